#include "hub_client.hpp"

#include <poll.h>

#include <cmath>

namespace ship::ctl {

namespace {

constexpr const char* service_name = "org.shipd.Hub1";
constexpr const char* hub_path = "/org/shipd/Hub1";
constexpr std::string_view peer_path_prefix = "/org/shipd/Hub1/peer/";

std::unique_ptr<sdbus::IConnection> open_bus(const Invocation& inv) {
    try {
        switch (inv.bus) {
        case BusKind::system:
            return sdbus::createSystemBusConnection();
        case BusKind::session:
            return sdbus::createSessionBusConnection();
        case BusKind::address:
            break;
        }
        return sdbus::createSessionBusConnectionWithAddress(inv.bus_address);
    } catch (const sdbus::Error& e) {
        throw CliError(exit_failure, "cannot connect to " + bus_label(inv) + ": " + e.getMessage());
    }
}

std::string error_suffix(const std::string& name) {
    const std::string prefix = "org.shipd.Hub1.Error.";
    return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : std::string();
}

} // namespace

class HubClient::Proxy final : public sdbus::ProxyInterfaces<org::shipd::Hub1_proxy> {
public:
    Proxy(sdbus::IConnection& connection, HubClient& client)
        : ProxyInterfaces(connection, service_name, hub_path)
        , client_(client) {
        registerProxy();
    }
    ~Proxy() { unregisterProxy(); }
    sdbus::IProxy& raw() { return getProxy(); }

private:
    void onPeerConnected(const std::string& ski) override { client_.record("PeerConnected", {ski}); }
    void onPeerDisconnected(const std::string& ski, const std::string& reason) override {
        client_.record("PeerDisconnected", {ski, reason});
    }
    void onPeerStateChanged(const std::string& ski, const std::string& state,
                            const std::string& error) override {
        client_.record("PeerStateChanged", {ski, state, error});
    }
    void onPeerShipIDChanged(const std::string& ski, const std::string& ship_id) override {
        client_.record("PeerShipIDChanged", {ski, ship_id});
    }
    void onDiscoveredChanged() override { client_.record("DiscoveredChanged", {}); }
    void onDataReceived(const std::string& ski, const std::string& json) override {
        client_.record("DataReceived", {ski, json});
    }
    HubClient& client_;
};

HubClient::HubClient(const Invocation& inv)
    : inv_(inv)
    , connection_(open_bus(inv)) {
    try {
        proxy_ = std::make_unique<Proxy>(*connection_, *this);
        // Owner changes of org.shipd.Hub1: for --wait, and so `monitor` can say shipd left or came back.
        bus_proxy_ = sdbus::createProxy(*connection_, "org.freedesktop.DBus", "/org/freedesktop/DBus");
        bus_proxy_->uponSignal("NameOwnerChanged")
            .onInterface("org.freedesktop.DBus")
            .call(
                [this](const std::string& name, const std::string& old_owner, const std::string& new_owner) {
                    if (name != service_name) return;
                    if (!new_owner.empty())
                        record("ServiceBack", {});
                    else if (!old_owner.empty())
                        record("ServiceLost", {});
                });
        bus_proxy_->finishRegistration();
    } catch (const sdbus::Error& e) {
        throw CliError(exit_failure,
                       "cannot subscribe to shipd's signals on " + bus_label(inv_) + ": " + e.getMessage());
    }
}

HubClient::~HubClient() = default;

org::shipd::Hub1_proxy& HubClient::hub() {
    return *proxy_;
}

void HubClient::record(std::string name, std::vector<std::string> args) {
    signals_.push_back({std::chrono::system_clock::now(), std::move(name), std::move(args)});
}

std::vector<HubSignal> HubClient::take_signals() {
    return std::exchange(signals_, {});
}

CliError HubClient::translate(const sdbus::Error& e, const std::string& ski) const {
    const std::string& name = e.getName();
    const std::string peer = ski.empty() ? std::string("the peer") : "peer " + ski;
    const std::string suffix = error_suffix(name);
    if (name == "org.freedesktop.DBus.Error.ServiceUnknown" ||
        name == "org.freedesktop.DBus.Error.NameHasNoOwner")
        return CliError(exit_failure,
                        "shipd is not running on " + bus_label(inv_) + " (" + service_name + " not found)" +
                            (inv_.bus == BusKind::system ? "; start it with `systemctl start shipd`" : ""));
    if (name == "org.freedesktop.DBus.Error.AccessDenied")
        return CliError(exit_failure,
                        "access denied by the bus policy: run shipctl as root or as a member of "
                        "group shipd (" +
                            e.getMessage() + ")");
    if (name == "org.freedesktop.DBus.Error.NoReply" || name == "org.freedesktop.DBus.Error.Timeout")
        return CliError(exit_failure, "shipd did not answer in time (" + e.getMessage() + ")");
    if (suffix == "NotTrusted")
        return CliError(exit_failure, peer + " is not trusted: run `shipctl trust " + ski + "` first");
    if (suffix == "NotConnected")
        return CliError(
            exit_failure,
            peer + " is not connected: see `shipctl peers`" +
                (ski.empty() ? std::string() : "; `shipctl connect " + ski + " HOST PORT` dials it"));
    if (suffix == "UnknownPeer")
        return CliError(exit_failure, "shipd knows no " + peer + ": see `shipctl peers`; `shipctl trust " +
                                          (ski.empty() ? std::string("SKI") : ski) + "` adds it");
    if (suffix == "AccessDenied")
        return CliError(exit_failure,
                        "shipd refused: " + e.getMessage() +
                            " (by default root and group shipd may; see org.shipd.Hub1(5), ACCESS)");
    if (suffix == "ConnectFailed" || suffix == "Timeout")
        return CliError(exit_failure, "could not connect: " + e.getMessage());
    if (suffix == "ShuttingDown")
        return CliError(exit_failure, "shipd is shutting down: try again once it is back");
    if (suffix == "InvalidSKI" || suffix == "InvalidJSON" || suffix == "InvalidArgument")
        return CliError(exit_usage, e.getMessage());
    if (!suffix.empty()) return CliError(exit_failure, e.getMessage());
    return CliError(exit_failure, "D-Bus error " + name + ": " + e.getMessage());
}

std::vector<std::string> HubClient::known_skis() {
    std::vector<std::string> skis;
    for (const auto& p : guarded([&] { return hub().ListPeers(); }))
        skis.push_back(p.get<0>());
    for (const auto& d : guarded([&] { return hub().ListDiscovered(); }))
        skis.push_back(d.get<0>());
    return skis;
}

PeerDetails HubClient::peer_details() {
    PeerDetails details;
    try {
        std::map<sdbus::ObjectPath, std::map<std::string, std::map<std::string, sdbus::Variant>>> objects;
        proxy_->raw()
            .callMethod("GetManagedObjects")
            .onInterface("org.freedesktop.DBus.ObjectManager")
            .storeResultsTo(objects);
        for (auto& [path, interfaces] : objects) {
            if (path.rfind(peer_path_prefix, 0) != 0) continue;
            const auto it = interfaces.find("org.shipd.Hub1.Peer");
            if (it == interfaces.end()) continue;
            details[path.substr(peer_path_prefix.size())] = std::move(it->second);
        }
    } catch (const sdbus::Error&) {
        // Details are extras on top of ListPeers; an older or stricter shipd just gets the short table.
    }
    return details;
}

bool HubClient::service_present() {
    bool has = false;
    bus_proxy_->callMethod("NameHasOwner")
        .onInterface("org.freedesktop.DBus")
        .withArguments(service_name)
        .storeResultsTo(has);
    return has;
}

void HubClient::wait_for_service() {
    if (inv_.wait_seconds <= 0) return;
    const auto deadline =
        std::chrono::steady_clock::now() +
        std::chrono::milliseconds(static_cast<long long>(std::llround(inv_.wait_seconds * 1000)));
    try {
        // Subscribed since the constructor, so an owner appearing after this check is not missed.
        if (service_present()) return;
        bool back = false;
        pump_until(
            [&] {
                for (const auto& s : signals_)
                    if (s.name == "ServiceBack") back = true;
                return back;
            },
            deadline);
        signals_.clear();
        if (back) return;
    } catch (const sdbus::Error& e) {
        throw translate(e, {});
    }
    throw CliError(exit_failure, "shipd did not appear on " + bus_label(inv_) + " within " +
                                     std::to_string(static_cast<long long>(std::ceil(inv_.wait_seconds))) +
                                     " s (" + service_name + " not found)");
}

bool HubClient::pump_until(const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline,
                           int extra_fd) {
    for (;;) {
        try {
            while (connection_->processPendingRequest()) {
            }
        } catch (const sdbus::Error& e) {
            throw CliError(exit_failure, "lost the connection to " + bus_label(inv_) + ": " + e.getMessage());
        }
        if (done()) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline) return false;
        const auto data = connection_->getEventLoopPollData();
        auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
        if (const int bus_ms = data.getPollTimeout(); bus_ms >= 0 && bus_ms < wait_ms) wait_ms = bus_ms;
        pollfd fds[2] = {{data.fd, data.events, 0}, {extra_fd, POLLIN, 0}};
        const int n = poll(fds, extra_fd >= 0 ? 2 : 1, static_cast<int>(std::min<long long>(wait_ms, 60000)));
        if (n > 0 && (fds[0].revents & (POLLHUP | POLLERR)) && !(fds[0].revents & POLLIN))
            throw CliError(exit_failure, "lost the connection to " + bus_label(inv_));
    }
}

} // namespace ship::ctl
