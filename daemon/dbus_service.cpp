#include "dbus_service.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>
#include <spdlog/spdlog.h>

#include "hub1_adaptor.hpp"
#include "ship/ski.hpp"

namespace ship::daemon {

using ship::hub::HubApi;
using ship::hub::PeerInfo;

std::string dbus_error_name(ship::hub::ErrorCode code) {
    using ship::hub::ErrorCode;
    std::string_view name = "InvalidArgument";
    switch (code) {
    case ErrorCode::invalid_ski:
        name = "InvalidSKI";
        break;
    case ErrorCode::unknown_peer:
        name = "UnknownPeer";
        break;
    case ErrorCode::not_trusted:
        name = "NotTrusted";
        break;
    case ErrorCode::not_connected:
        name = "NotConnected";
        break;
    case ErrorCode::invalid_json:
        name = "InvalidJSON";
        break;
    case ErrorCode::invalid_argument:
        name = "InvalidArgument";
        break;
    case ErrorCode::shutting_down:
        name = "ShuttingDown";
        break;
    }
    return "org.shipd.Hub1.Error." + std::string(name);
}

namespace {

constexpr const char* peer_interface = "org.shipd.Hub1.Peer";

sdbus::Error shutting_down_error() {
    return sdbus::Error(dbus_error_name(ship::hub::ErrorCode::shutting_down), "shipd is shutting down");
}

// The connection and the eventfd that wakes the bus thread. Every pending reply shares it, so an answer
// still held by the strand never outlives the connection it is sent on.
struct Bus {
    std::unique_ptr<sdbus::IConnection> connection;
    int wake_fd = -1;

    ~Bus() {
        connection.reset();
        if (wake_fd >= 0) close(wake_fd);
    }
    // After a send from a thread other than the bus thread: the loop re-polls and flushes a partial write.
    void wake() const noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = write(wake_fd, &one, sizeof one);
    }
};

std::unique_ptr<sdbus::IConnection> open_connection(const DbusServiceConfig& config) {
    switch (config.bus) {
    case BusKind::system:
        return sdbus::createSystemBusConnection();
    case BusKind::session:
        return sdbus::createSessionBusConnection();
    case BusKind::address:
        return sdbus::createSessionBusConnectionWithAddress(config.bus_address);
    }
    throw std::logic_error("unknown bus kind");
}

// One method call waiting for the strand. Answered exactly once: by the strand, or ShuttingDown when the
// closure carrying it is destroyed unrun (the strand stopped and dropped its queue).
template <typename... Ts>
class PendingReply {
public:
    PendingReply(sdbus::Result<Ts...>&& result, std::shared_ptr<const Bus> bus)
        : result_(std::move(result))
        , bus_(std::move(bus)) {}
    PendingReply(const PendingReply&) = delete;
    PendingReply& operator=(const PendingReply&) = delete;
    ~PendingReply() { fail(shutting_down_error()); }

    void succeed(const Ts&... values) {
        answer([&] { result_.returnResults(values...); });
    }
    void fail(const sdbus::Error& error) {
        answer([&] { result_.returnError(error); });
    }

private:
    template <typename Send>
    void answer(Send&& send) noexcept {
        if (answered_) return;
        answered_ = true;
        try {
            send();
            bus_->wake();
        } catch (const std::exception& e) {
            spdlog::warn("D-Bus: could not send a method reply: {}", e.what());
        }
    }

    sdbus::Result<Ts...> result_;
    std::shared_ptr<const Bus> bus_;
    bool answered_ = false;
};

// What the hub object's getters return; written from the strand (and optimistically by the setters).
struct HubProperties {
    std::string local_ski, ship_id, qr_code;
    std::uint16_t port = 0;
    bool auto_accept = false, wait_for_trust = true;
};

HubProperties read_hub_properties(const HubApi& hub) {
    return HubProperties{hub.local_ski(), hub.ship_id(),     hub.qr_code(),
                         hub.port(),      hub.auto_accept(), hub.wait_for_trust()};
}

using PeerEntry = sdbus::Struct<std::string, std::string, std::string, bool, bool>;
using DiscoveredEntry = sdbus::Struct<std::string, std::string, std::string, std::string, std::string,
                                      std::string, std::uint16_t>;

class PeerObject final
    : public sdbus::AdaptorInterfaces<org::shipd::Hub1::Peer_adaptor, sdbus::Properties_adaptor,
                                      sdbus::ManagedObject_adaptor> {
public:
    PeerObject(sdbus::IConnection& connection, PeerInfo info)
        : AdaptorInterfaces(connection, dbus_peer_path_prefix + info.ski)
        , info_(std::move(info)) {
        registerAdaptor();
    }
    ~PeerObject() { unregisterAdaptor(); }
    PeerObject(const PeerObject&) = delete;
    PeerObject& operator=(const PeerObject&) = delete;

    // Stores the new view and names the properties whose value changed.
    std::vector<std::string> update(PeerInfo info) {
        std::vector<std::string> changed;
        std::lock_guard lock(mutex_);
        const auto note = [&](bool differs, const char* name) {
            if (differs) changed.emplace_back(name);
        };
        note(info.ship_id != info_.ship_id, "ShipID");
        note(info.state != info_.state, "State");
        note(info.error != info_.error, "Error");
        note(info.trusted != info_.trusted, "Trusted");
        note(info.connected != info_.connected, "Connected");
        note(info.brand != info_.brand, "Brand");
        note(info.model != info_.model, "Model");
        note(info.type != info_.type, "Type");
        note(info.host != info_.host, "Host");
        note(info.port != info_.port, "Port");
        note(info.connected_since_us != info_.connected_since_us, "ConnectedSince");
        note(info.messages_in != info_.messages_in, "MessagesIn");
        note(info.messages_out != info_.messages_out, "MessagesOut");
        note(info.bytes_in != info_.bytes_in, "BytesIn");
        note(info.bytes_out != info_.bytes_out, "BytesOut");
        info.ski = info_.ski; // the object path names it; it cannot change
        info_ = std::move(info);
        return changed;
    }

private:
    template <typename T>
    T get(T PeerInfo::*field) {
        std::lock_guard lock(mutex_);
        return info_.*field;
    }

    std::string SKI() override { return get(&PeerInfo::ski); }
    std::string ShipID() override { return get(&PeerInfo::ship_id); }
    std::string State() override { return std::string(ship::to_string(get(&PeerInfo::state))); }
    std::string Error() override { return get(&PeerInfo::error); }
    bool Trusted() override { return get(&PeerInfo::trusted); }
    bool Connected() override { return get(&PeerInfo::connected); }
    std::string Brand() override { return get(&PeerInfo::brand); }
    std::string Model() override { return get(&PeerInfo::model); }
    std::string Type() override { return get(&PeerInfo::type); }
    std::string Host() override { return get(&PeerInfo::host); }
    std::uint16_t Port() override { return get(&PeerInfo::port); }
    std::uint64_t ConnectedSince() override { return get(&PeerInfo::connected_since_us); }
    std::uint64_t MessagesIn() override { return get(&PeerInfo::messages_in); }
    std::uint64_t MessagesOut() override { return get(&PeerInfo::messages_out); }
    std::uint64_t BytesIn() override { return get(&PeerInfo::bytes_in); }
    std::uint64_t BytesOut() override { return get(&PeerInfo::bytes_out); }

    std::mutex mutex_; // getters on the bus thread, update on the strand
    PeerInfo info_;
};

class HubObject;

} // namespace

struct DbusService::Impl {
    Impl(DbusServiceConfig config_in, HubApi& hub_in, std::stop_token stop_in);
    ~Impl();

    // Bus thread
    // Posts `work(hub)` to the strand and answers the call from there; with `persisted`, a success only
    // once HubApi::when_persisted says the change is on disk.
    template <typename... Ts, typename Work>
    void dispatch(sdbus::Result<Ts...>&& result, Work work, bool persisted = false);
    void set_flag(bool HubProperties::*field, void (HubApi::*setter)(bool), bool (HubApi::*getter)() const,
                  const char* name, bool value);
    void bus_loop();

    // Strand
    template <typename Emit>
    void emit(Emit&& send);
    void refresh_hub_properties();
    void add_or_update_peer(const PeerInfo& peer);
    void remove_peer(const std::string& ski);

    HubProperties properties() const {
        std::lock_guard lock(properties_mutex);
        return props;
    }

    // Declared first so it is destroyed last: objects unregister through the connection.
    std::shared_ptr<Bus> bus;
    DbusServiceConfig config;
    HubApi& hub;
    std::stop_token stop;

    // Once stopped is set (under emit_mutex, by the stop callback) nothing is emitted any more.
    std::mutex emit_mutex;
    bool stopped = false;
    // Strand only. No signal leaves before org.shipd.Hub1 is ours: one sent from our unique name alone
    // reaches no app (they match on the well-known name), so a PeerConnected would be lost and the app's
    // first word on that SKI would be PeerDisconnected. start() turns this on and announces who is connected.
    bool serving = false;
    std::optional<std::stop_callback<std::function<void()>>> on_stop;

    mutable std::mutex properties_mutex;
    HubProperties props;
    std::optional<std::string> qr_code; // strand only: set by a reload, wins over the hub's start-up text

    std::unique_ptr<HubObject> hub_object;
    std::map<std::string, std::unique_ptr<PeerObject>> peers; // strand only

    int exit_fd = -1;
    std::thread bus_thread;
};

namespace {

class HubObject final
    : public sdbus::AdaptorInterfaces<org::shipd::Hub1_adaptor, sdbus::ObjectManager_adaptor,
                                      sdbus::Properties_adaptor> {
public:
    HubObject(sdbus::IConnection& connection, DbusService::Impl& impl)
        : AdaptorInterfaces(connection, dbus_hub_path)
        , impl_(impl) {
        registerAdaptor();
    }
    ~HubObject() { unregisterAdaptor(); }
    HubObject(const HubObject&) = delete;
    HubObject& operator=(const HubObject&) = delete;

private:
    void ListPeers(sdbus::Result<std::vector<PeerEntry>>&& result) override {
        impl_.dispatch(std::move(result), [](HubApi& hub) {
            std::vector<PeerEntry> entries;
            for (const auto& p : hub.list_peers())
                entries.emplace_back(p.ski, p.ship_id, std::string(ship::to_string(p.state)), p.trusted,
                                     p.connected);
            return entries;
        });
    }
    void ListDiscovered(sdbus::Result<std::vector<DiscoveredEntry>>&& result) override {
        impl_.dispatch(std::move(result), [](HubApi& hub) {
            std::vector<DiscoveredEntry> entries;
            for (const auto& d : hub.list_discovered())
                entries.emplace_back(d.ski, d.ship_id, d.brand, d.model, d.type, d.host, d.port);
            return entries;
        });
    }
    void Trust(sdbus::Result<>&& result, std::string ski) override {
        impl_.dispatch(
            std::move(result), [ski = std::move(ski)](HubApi& hub) { return hub.trust(ski); }, true);
    }
    void Untrust(sdbus::Result<>&& result, std::string ski) override {
        impl_.dispatch(
            std::move(result), [ski = std::move(ski)](HubApi& hub) { return hub.untrust(ski); }, true);
    }
    void Connect(sdbus::Result<>&& result, std::string ski, std::string host, std::uint16_t port) override {
        impl_.dispatch(
            std::move(result),
            [ski = std::move(ski), host = std::move(host), port](HubApi& hub) {
                return hub.connect(ski, host, port);
            },
            true);
    }
    void Disconnect(sdbus::Result<>&& result, std::string ski, std::string reason) override {
        impl_.dispatch(std::move(result), [ski = std::move(ski), reason = std::move(reason)](HubApi& hub) {
            return hub.disconnect(ski, reason);
        });
    }
    void CancelPairing(sdbus::Result<>&& result, std::string ski) override {
        impl_.dispatch(
            std::move(result), [ski = std::move(ski)](HubApi& hub) { return hub.cancel_pairing(ski); }, true);
    }
    void SendData(sdbus::Result<>&& result, std::string ski, std::string json) override {
        impl_.dispatch(std::move(result), [ski = std::move(ski), json = std::move(json)](HubApi& hub) {
            return hub.send_data(ski, json);
        });
    }

    std::string LocalSKI() override { return impl_.properties().local_ski; }
    std::string ShipID() override { return impl_.properties().ship_id; }
    std::uint16_t Port() override { return impl_.properties().port; }
    std::string Version() override { return impl_.config.version; }
    std::string QRCode() override { return impl_.properties().qr_code; }
    bool AutoAccept() override { return impl_.properties().auto_accept; }
    void AutoAccept(const bool& value) override {
        impl_.set_flag(&HubProperties::auto_accept, &HubApi::set_auto_accept, &HubApi::auto_accept,
                       "AutoAccept", value);
    }
    bool WaitForTrust() override { return impl_.properties().wait_for_trust; }
    void WaitForTrust(const bool& value) override {
        impl_.set_flag(&HubProperties::wait_for_trust, &HubApi::set_wait_for_trust, &HubApi::wait_for_trust,
                       "WaitForTrust", value);
    }

    DbusService::Impl& impl_;
};

} // namespace

DbusService::Impl::Impl(DbusServiceConfig config_in, HubApi& hub_in, std::stop_token stop_in)
    : bus(std::make_shared<Bus>())
    , config(std::move(config_in))
    , hub(hub_in)
    , stop(std::move(stop_in)) {
    if (!config.post) throw std::invalid_argument("DbusService needs a post function");
    bus->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (bus->wake_fd < 0 || exit_fd < 0)
        throw std::runtime_error(std::string("D-Bus: eventfd failed: ") + std::strerror(errno));
    bus->connection = open_connection(config);
    hub_object = std::make_unique<HubObject>(*bus->connection, *this);
    on_stop.emplace(stop, [this] {
        std::lock_guard lock(emit_mutex);
        stopped = true;
    });
}

DbusService::Impl::~Impl() {
    if (bus_thread.joinable()) {
        const std::uint64_t one = 1;
        [[maybe_unused]] const auto n = write(exit_fd, &one, sizeof one);
        bus_thread.join();
    }
    on_stop.reset();
    // Quietly: objects vanish with the connection; after stop no InterfacesRemoved is owed.
    peers.clear();
    hub_object.reset();
    if (exit_fd >= 0) close(exit_fd);
}

namespace {

// The strand's answer: a command's hub::Result becomes success or the named error; a query's value is sent.
void finish(PendingReply<>& reply, const ship::hub::Result& result) {
    if (result) return reply.fail(sdbus::Error(dbus_error_name(result->code), result->message));
    reply.succeed();
}

template <typename T>
void finish(PendingReply<T>& reply, const T& value) {
    reply.succeed(value);
}

} // namespace

template <typename... Ts, typename Work>
void DbusService::Impl::dispatch(sdbus::Result<Ts...>&& result, Work work, bool persisted) {
    auto reply = std::make_shared<PendingReply<Ts...>>(std::move(result), bus);
    if (stop.stop_requested()) return reply->fail(shutting_down_error());
    try {
        config.post([this, reply, work = std::move(work), persisted]() mutable {
            if (stop.stop_requested()) return reply->fail(shutting_down_error());
            try {
                auto answer = work(hub);
                if (persisted) { // a command (no return values) whose success waits for the disk
                    if constexpr (sizeof...(Ts) == 0)
                        if (!answer)
                            return hub.when_persisted(
                                [reply](const ship::hub::Result& r) { finish(*reply, r); });
                }
                finish(*reply, answer);
            } catch (const std::exception& e) {
                spdlog::error("D-Bus: the hub failed a call: {}", e.what());
                reply->fail(sdbus::Error("org.freedesktop.DBus.Error.Failed", e.what()));
            }
        });
    } catch (const std::exception& e) {
        spdlog::warn("D-Bus: the strand refused a call: {}", e.what());
        reply->fail(shutting_down_error());
    }
}

// A property Set cannot be answered asynchronously in sdbus-c++ 1.2 and must not wait for the strand (see
// the header), so the snapshot takes the new value at once — a Get right after the Set sees it — and the
// strand applies it and then stores what the hub really holds and announces a change.
void DbusService::Impl::set_flag(bool HubProperties::*field, void (HubApi::*setter)(bool),
                                 bool (HubApi::*getter)() const, const char* name, bool value) {
    if (stop.stop_requested()) throw shutting_down_error();
    {
        std::lock_guard lock(properties_mutex);
        props.*field = value;
    }
    try {
        config.post([this, field, setter, getter, name, value] {
            if (stop.stop_requested()) return;
            const bool before = (hub.*getter)();
            (hub.*setter)(value);
            const bool after = (hub.*getter)();
            {
                std::lock_guard lock(properties_mutex);
                props.*field = after;
            }
            spdlog::info("D-Bus: {} set to {}", name, after);
            if (before != after)
                emit([&] {
                    hub_object->emitPropertiesChangedSignal(org::shipd::Hub1_adaptor::INTERFACE_NAME, {name});
                });
        });
    } catch (const std::exception& e) {
        spdlog::warn("D-Bus: the strand refused setting {}: {}", name, e.what());
        throw shutting_down_error();
    }
}

template <typename Emit>
void DbusService::Impl::emit(Emit&& send) {
    std::lock_guard lock(emit_mutex);
    if (stopped || !serving) return;
    try {
        send();
        bus->wake();
    } catch (const std::exception& e) {
        spdlog::warn("D-Bus: could not emit a signal: {}", e.what());
    }
}

void DbusService::Impl::refresh_hub_properties() {
    HubProperties now = read_hub_properties(hub);
    if (qr_code) now.qr_code = *qr_code;
    std::vector<std::string> changed;
    {
        std::lock_guard lock(properties_mutex);
        // LocalSKI, ShipID and Version are announced as constant; Port may change once, QRCode on a reload.
        if (now.port != props.port) changed.emplace_back("Port");
        if (now.qr_code != props.qr_code) changed.emplace_back("QRCode");
        if (now.auto_accept != props.auto_accept) changed.emplace_back("AutoAccept");
        if (now.wait_for_trust != props.wait_for_trust) changed.emplace_back("WaitForTrust");
        props = now;
    }
    if (!changed.empty())
        emit([&] {
            hub_object->emitPropertiesChangedSignal(org::shipd::Hub1_adaptor::INTERFACE_NAME, changed);
        });
}

void DbusService::Impl::add_or_update_peer(const PeerInfo& peer) {
    if (!ship::is_canonical_ski(peer.ski)) {
        spdlog::error("D-Bus: the hub reported a peer with a malformed SKI '{}'; no object for it", peer.ski);
        return;
    }
    const auto it = peers.find(peer.ski);
    if (it == peers.end()) {
        try {
            auto object = std::make_unique<PeerObject>(*bus->connection, peer);
            auto& added = *object;
            peers.emplace(peer.ski, std::move(object));
            emit([&] { added.emitInterfacesAddedSignal(); });
        } catch (const std::exception& e) {
            spdlog::error("D-Bus: could not publish the object for SKI {}: {}", peer.ski, e.what());
        }
        return;
    }
    auto& object = *it->second;
    const auto changed = object.update(peer);
    if (!changed.empty()) emit([&] { object.emitPropertiesChangedSignal(peer_interface, changed); });
}

void DbusService::Impl::remove_peer(const std::string& ski) {
    const auto it = peers.find(ski);
    if (it == peers.end()) return;
    // sd-bus lists the interfaces from the registered object, so announce before unregistering.
    emit([&] { it->second->emitInterfacesRemovedSignal(); });
    peers.erase(it);
}

void DbusService::Impl::bus_loop() {
    auto& connection = *bus->connection;
    try {
        for (;;) {
            while (connection.processPendingRequest()) {
            }
            const auto data = connection.getEventLoopPollData();
            pollfd fds[] = {{data.fd, data.events, 0}, {bus->wake_fd, POLLIN, 0}, {exit_fd, POLLIN, 0}};
            const int n = poll(fds, 3, data.getPollTimeout());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) throw std::runtime_error(std::string("poll failed: ") + std::strerror(errno));
            if ((fds[2].revents & POLLIN) != 0) return;
            if ((fds[1].revents & POLLIN) != 0) {
                std::uint64_t count = 0;
                [[maybe_unused]] const auto r = read(bus->wake_fd, &count, sizeof count);
            }
        }
    } catch (const std::exception& e) {
        spdlog::error("D-Bus: the bus connection failed: {}", e.what());
        if (config.on_bus_failure) config.on_bus_failure(e.what());
    }
}

DbusService::DbusService(DbusServiceConfig config, HubApi& hub, std::stop_token stop)
    : impl_(std::make_unique<Impl>(std::move(config), hub, std::move(stop))) {}

DbusService::~DbusService() = default;

void DbusService::start(std::chrono::milliseconds timeout) {
    auto& impl = *impl_;
    // Runs `step` on the strand and waits for it (the strand is running: see the header).
    auto on_strand = [&impl, timeout](std::function<void()> step) {
        auto done = std::make_shared<std::promise<void>>();
        auto ready = done->get_future();
        impl.config.post([done, step = std::move(step)] {
            try {
                step();
                done->set_value();
            } catch (...) {
                done->set_exception(std::current_exception());
            }
        });
        if (ready.wait_for(timeout) != std::future_status::ready)
            throw std::runtime_error("D-Bus: the hub did not answer within " +
                                     std::to_string(timeout.count()) + " ms while the service started");
        ready.get();
    };
    on_strand([&impl] {
        impl.refresh_hub_properties();
        for (const auto& peer : impl.hub.list_peers())
            impl.add_or_update_peer(peer);
    });
    // The name after the objects: whoever sees org.shipd.Hub1 appear finds them already there.
    impl.bus->connection->requestName(dbus_service_name);
    impl.bus_thread = std::thread([&impl] { impl.bus_loop(); });
    // Signals from here on; the peers that reached data exchange while the name was not ours are announced
    // now, in the same strand step, so per SKI an app still sees PeerConnected first and alternation holds.
    on_strand([&impl] {
        impl.serving = true;
        for (const auto& peer : impl.hub.list_peers())
            if (peer.connected) impl.emit([&] { impl.hub_object->emitPeerConnected(peer.ski); });
    });
    spdlog::info("D-Bus: serving {} as {}", dbus_service_name, unique_name());
}

void DbusService::hub_properties_changed() {
    impl_->refresh_hub_properties();
}

void DbusService::set_qr_code(std::string qr_code) {
    impl_->qr_code = std::move(qr_code);
    impl_->refresh_hub_properties();
}

std::string DbusService::unique_name() const {
    return impl_->bus->connection->getUniqueName();
}

void DbusService::peer_connected(const std::string& ski) {
    impl_->emit([&] { impl_->hub_object->emitPeerConnected(ski); });
}

void DbusService::peer_disconnected(const std::string& ski, const std::string& reason) {
    impl_->emit([&] { impl_->hub_object->emitPeerDisconnected(ski, reason); });
}

void DbusService::peer_state_changed(const std::string& ski, ship::PeerState state,
                                     const std::string& error) {
    impl_->emit(
        [&] { impl_->hub_object->emitPeerStateChanged(ski, std::string(ship::to_string(state)), error); });
}

void DbusService::peer_ship_id_changed(const std::string& ski, const std::string& ship_id) {
    impl_->emit([&] { impl_->hub_object->emitPeerShipIDChanged(ski, ship_id); });
}

void DbusService::discovered_changed() {
    impl_->emit([&] { impl_->hub_object->emitDiscoveredChanged(); });
}

void DbusService::data_received(const std::string& ski, const std::string& json) {
    impl_->emit([&] { impl_->hub_object->emitDataReceived(ski, json); });
}

void DbusService::peer_added(const PeerInfo& peer) {
    impl_->add_or_update_peer(peer);
}

void DbusService::peer_changed(const PeerInfo& peer) {
    impl_->add_or_update_peer(peer);
}

void DbusService::peer_removed(const std::string& ski) {
    impl_->remove_peer(ski);
}

} // namespace ship::daemon
