// An energy-manager app in one file, using nothing but shipd's D-Bus API (org.shipd.Hub1) through the
// generated sdbus-c++ proxy: wait for a SHIP peer (or take its SKI), ask it what it is with a SPINE
// NodeManagement detailed-discovery read, print the reply, exit. `--respond` plays the device side instead:
// it answers such reads with a small wallbox description (shipd itself does not speak SPINE).
//
// What an app author should copy (see the comments where each happens):
// - pairing: `--agent` registers the app as shipd's pairing agent (org.shipd.Hub1.Agent1). shipd then asks
//   it about every unknown device (AuthorizePeer, with SKI, address, brand/model and deadline); it approves
//   the SKI given with --ski (or any device without --ski) and denies the rest. Requests that end otherwise
//   arrive as Cancel; Release when shipd stops. shipd forgets agents when it restarts: re-register then.
// - reconnect: a peer that goes away while we wait is waited for again (shipd redials trusted peers), and
//   the read is sent again on its new connection.
// - errors: every D-Bus error has a name (org.shipd.Hub1.Error.*); NotConnected means "wait for
//   PeerConnected", the rest are reported. PeerStateChanged with state error says why a handshake failed.
//
//   shipd-em-example [--system|--session|--bus-address ADDR] [--ski SKI] [--timeout SECONDS]
//                    [--agent [--pair-only]]
//   shipd-em-example --respond [--system|--session|--bus-address ADDR] [--once]
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sdbus-c++/sdbus-c++.h>

#include "hub1_adaptor.hpp"
#include "hub1_proxy.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Event {
    std::string name, ski, json;
};

// The hub proxy records signals; the app acts on them between pumps, never inside a handler.
class Hub final : public sdbus::ProxyInterfaces<org::shipd::Hub1_proxy> {
public:
    explicit Hub(sdbus::IConnection& connection)
        : ProxyInterfaces(connection, "org.shipd.Hub1", "/org/shipd/Hub1") {
        registerProxy();
    }
    ~Hub() { unregisterProxy(); }
    std::deque<Event> events;

private:
    void onPeerConnected(const std::string& ski) override { events.push_back({"connected", ski, {}}); }
    void onPeerDisconnected(const std::string& ski, const std::string&) override {
        events.push_back({"disconnected", ski, {}});
    }
    void onPeerStateChanged(const std::string& ski, const std::string& state,
                            const std::string& error) override {
        // The reason a handshake failed (or a pairing request ended): worth showing to the user.
        if (state == "error" || state == "remote-denied-trust") events.push_back({"failed", ski, error});
    }
    void onPeerShipIDChanged(const std::string&, const std::string&) override {}
    void onDiscoveredChanged() override {}
    void onDataReceived(const std::string& ski, const std::string& json) override {
        events.push_back({"data", ski, json});
    }
};

// The app's pairing agent. Handlers only decide and record; the main loop prints and acts.
class PairingAgent final : public sdbus::AdaptorInterfaces<org::shipd::Hub1::Agent1_adaptor> {
public:
    static constexpr const char* path = "/org/shipd/examples/energy_manager/agent";
    PairingAgent(sdbus::IConnection& connection, std::string wanted)
        : AdaptorInterfaces(connection, path)
        , wanted_(std::move(wanted)) {
        registerAdaptor();
    }
    ~PairingAgent() { unregisterAdaptor(); }
    std::deque<std::string> log;
    bool released = false;

private:
    // Answer at once or keep `result` and answer later (a UI would ask its user): either is fine, shipd
    // does not wait for the app. No answer before details["Deadline"] means the request expires.
    void AuthorizePeer(sdbus::Result<bool>&& result, sdbus::ObjectPath,
                       std::map<std::string, sdbus::Variant> details) override {
        const auto ski = details["SKI"].get<std::string>();
        const bool approve = wanted_.empty() || ski == wanted_;
        log.push_back(std::string(approve ? "approving" : "denying") + " pairing request from " + ski +
                      " at " + details["Host"].get<std::string>() + ":" +
                      std::to_string(details["Port"].get<std::uint16_t>()));
        result.returnResults(approve);
    }
    void Cancel(const sdbus::ObjectPath& peer, const std::string& reason) override {
        log.push_back("pairing request of " + std::string(peer) + " ended: " + reason);
    }
    void Release() override {
        log.push_back("released by shipd");
        released = true;
    }
    std::string wanted_;
};

// Processes the bus until `done()`, the deadline, or Ctrl-C (then returns false).
bool pump(sdbus::IConnection& bus, int stop_fd, Clock::time_point deadline,
          const std::function<bool()>& done) {
    for (;;) {
        while (bus.processPendingRequest()) {
        }
        if (done()) return true;
        const auto now = Clock::now();
        if (now >= deadline) return false;
        const auto data = bus.getEventLoopPollData();
        auto wait_ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
        if (const int bus_ms = data.getPollTimeout(); bus_ms >= 0 && bus_ms < wait_ms) wait_ms = bus_ms;
        pollfd fds[2] = {{data.fd, data.events, 0}, {stop_fd, POLLIN, 0}};
        poll(fds, 2, static_cast<int>(std::min<long long>(wait_ms, 60000)));
        if (fds[1].revents & POLLIN) return false;
    }
}

std::string to_text(const rapidjson::Value& v) {
    rapidjson::StringBuffer out;
    rapidjson::Writer<rapidjson::StringBuffer> w(out);
    v.Accept(w);
    return out.GetString();
}

const char* text_at(const rapidjson::Value& root, const char* pointer) {
    const auto* v = rapidjson::Pointer(pointer).Get(root);
    return v && v->IsString() ? v->GetString() : "";
}

std::int64_t number_at(const rapidjson::Value& root, const char* pointer) {
    const auto* v = rapidjson::Pointer(pointer).Get(root);
    return v && v->IsInt64() ? v->GetInt64() : -1;
}

std::string entity_text(const rapidjson::Value* entity) {
    std::string out = "[";
    if (entity && entity->IsArray())
        for (const auto& e : entity->GetArray())
            out += (out.size() > 1 ? "," : "") + (e.IsInt() ? std::to_string(e.GetInt()) : std::string("?"));
    return out + "]";
}

// The read an energy manager sends first: "who are you, which entities and features do you have?"
std::string discovery_read(std::int64_t msg_counter) {
    rapidjson::Document d;
    d.Parse(R"({"datagram":{"header":{"specificationVersion":"1.3.0",
        "addressSource":{"device":"d:_i:shipd_example-em","entity":[0],"feature":0},
        "addressDestination":{"entity":[0],"feature":0},"msgCounter":0,"cmdClassifier":"read"},
        "payload":{"cmd":[{"nodeManagementDetailedDiscoveryData":{}}]}}})");
    rapidjson::Pointer("/datagram/header/msgCounter").Set(d, msg_counter);
    return to_text(d);
}

// What the example device says about itself: one wallbox with an EVSE entity.
std::string discovery_reply(const rapidjson::Document& request, std::int64_t msg_counter) {
    rapidjson::Document d;
    d.Parse(R"({"datagram":{"header":{"specificationVersion":"1.3.0",
        "addressSource":{"device":"d:_i:shipd_example-wallbox","entity":[0],"feature":0},
        "addressDestination":{"entity":[0],"feature":0},"msgCounter":0,"msgCounterReference":0,
        "cmdClassifier":"reply"},
      "payload":{"cmd":[{"nodeManagementDetailedDiscoveryData":{
        "specificationVersionList":{"specificationVersion":["1.3.0"]},
        "deviceInformation":{"description":{"deviceAddress":{"device":"d:_i:shipd_example-wallbox"},
          "deviceType":"ChargingStation","networkFeatureSet":"smart"}},
        "entityInformation":[
          {"description":{"entityAddress":{"entity":[0]},"entityType":"DeviceInformation"}},
          {"description":{"entityAddress":{"entity":[1]},"entityType":"EVSE"}}],
        "featureInformation":[
          {"description":{"featureAddress":{"entity":[0],"feature":0},"featureType":"NodeManagement",
            "role":"special","supportedFunction":[{"function":"nodeManagementDetailedDiscoveryData",
            "possibleOperations":{"read":{}}}]}},
          {"description":{"featureAddress":{"entity":[1],"feature":1},"featureType":"DeviceClassification",
            "role":"server"}}]}}]}}})");
    auto& header = d["datagram"]["header"];
    if (const auto* source = rapidjson::Pointer("/datagram/header/addressSource").Get(request))
        header["addressDestination"].CopyFrom(*source, d.GetAllocator());
    header["msgCounter"].SetInt64(msg_counter);
    header["msgCounterReference"].SetInt64(number_at(request, "/datagram/header/msgCounter"));
    return to_text(d);
}

bool is_discovery(const rapidjson::Document& d, const char* classifier) {
    const auto* cmd =
        rapidjson::Pointer("/datagram/payload/cmd/0/nodeManagementDetailedDiscoveryData").Get(d);
    return cmd && std::string(text_at(d, "/datagram/header/cmdClassifier")) == classifier;
}

void print_reply(const std::string& ski, const rapidjson::Document& d) {
    const auto* data =
        rapidjson::Pointer("/datagram/payload/cmd/0/nodeManagementDetailedDiscoveryData").Get(d);
    std::cout << "reply from " << ski << ":\n";
    std::cout << "  device   " << text_at(*data, "/deviceInformation/description/deviceAddress/device")
              << " (" << text_at(*data, "/deviceInformation/description/deviceType") << ")\n";
    if (const auto* entities = rapidjson::Pointer("/entityInformation").Get(*data);
        entities && entities->IsArray())
        for (const auto& e : entities->GetArray())
            std::cout << "  entity   "
                      << entity_text(rapidjson::Pointer("/description/entityAddress/entity").Get(e)) << " "
                      << text_at(e, "/description/entityType") << "\n";
    if (const auto* features = rapidjson::Pointer("/featureInformation").Get(*data);
        features && features->IsArray())
        for (const auto& f : features->GetArray())
            std::cout << "  feature  "
                      << entity_text(rapidjson::Pointer("/description/featureAddress/entity").Get(f)) << "."
                      << number_at(f, "/description/featureAddress/feature") << " "
                      << text_at(f, "/description/featureType") << " (" << text_at(f, "/description/role")
                      << ")\n";
    std::cout << to_text(d) << std::endl;
}

std::string normalise(std::string ski) {
    std::string out;
    for (const char c : ski)
        if (c != ' ' && c != '-')
            out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    return out;
}

int usage(const char* why) {
    std::cerr << "shipd-em-example: " << why << "\n"
              << "usage: shipd-em-example [--system|--session|--bus-address ADDR] [--ski SKI] [--timeout S]\n"
              << "       shipd-em-example --respond [--system|--session|--bus-address ADDR] [--once]\n";
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::string bus_address, ski;
    bool session = false, respond = false, once = false, agent_wanted = false, pair_only = false;
    double timeout_s = 60;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--bus-address")
            bus_address = value();
        else if (a == "--session")
            session = true;
        else if (a == "--system")
            session = false;
        else if (a == "--ski")
            ski = normalise(value());
        else if (a == "--timeout")
            timeout_s = std::atof(value().c_str());
        else if (a == "--respond")
            respond = true;
        else if (a == "--once")
            once = true;
        else if (a == "--agent")
            agent_wanted = true;
        else if (a == "--pair-only")
            pair_only = true;
        else
            return usage(("unknown argument " + a).c_str());
    }
    if (timeout_s <= 0) return usage("--timeout needs a positive number of seconds");

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, nullptr);
    const int stop_fd = signalfd(-1, &stop, SFD_CLOEXEC);

    try {
        auto bus = !bus_address.empty() ? sdbus::createSessionBusConnectionWithAddress(bus_address)
                   : session            ? sdbus::createSessionBusConnection()
                                        : sdbus::createSystemBusConnection();
        Hub hub(*bus);
        const std::string own = hub.LocalSKI(); // also proves shipd is there

        if (respond) {
            std::cerr << "responder on shipd " << own << ": answering discovery reads (Ctrl-C stops)"
                      << std::endl;
            std::int64_t counter = 1000;
            bool answered = false;
            while (!(once && answered)) {
                if (!pump(*bus, stop_fd, Clock::time_point::max(), [&] { return !hub.events.empty(); }))
                    break;
                const Event e = hub.events.front();
                hub.events.pop_front();
                if (e.name != "data") continue;
                rapidjson::Document request;
                request.Parse(e.json.c_str());
                if (request.HasParseError() || !is_discovery(request, "read")) continue;
                hub.SendData(e.ski, discovery_reply(request, ++counter));
                std::cerr << "answered a discovery read from " << e.ski << std::endl;
                answered = true;
            }
            close(stop_fd);
            return 0;
        }

        const auto deadline =
            Clock::now() + std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000));

        // Pairing: one agent per app; a second app's agent waits in line behind ours. shipd forgets agents
        // when it restarts, so an app that lives longer than shipd registers again when the name returns.
        std::unique_ptr<PairingAgent> agent;
        std::unique_ptr<sdbus::IProxy> bus_watch;
        if (agent_wanted) {
            agent = std::make_unique<PairingAgent>(*bus, ski);
            hub.RegisterAgent(sdbus::ObjectPath(PairingAgent::path));
            std::cerr << "registered as shipd's pairing agent" << std::endl;
            bus_watch = sdbus::createProxy(*bus, "org.freedesktop.DBus", "/org/freedesktop/DBus");
            bus_watch->uponSignal("NameOwnerChanged")
                .onInterface("org.freedesktop.DBus")
                .call([&hub](const std::string& name, const std::string&, const std::string& owner) {
                    if (name == "org.shipd.Hub1" && !owner.empty())
                        hub.events.push_back({"shipd-back", {}, {}});
                });
            bus_watch->finishRegistration();
        }
        // Between pumps: what the agent and the signals reported, printed and acted on here.
        auto report = [&] {
            if (agent)
                for (; !agent->log.empty(); agent->log.pop_front())
                    std::cerr << "agent: " << agent->log.front() << std::endl;
            for (auto it = hub.events.begin(); it != hub.events.end();) {
                if (it->name == "failed") {
                    std::cerr << "SHIP with " << it->ski << " failed: " << it->json << std::endl;
                } else if (it->name == "shipd-back" && agent) {
                    try {
                        hub.RegisterAgent(sdbus::ObjectPath(PairingAgent::path));
                        std::cerr << "shipd is back: registered as its pairing agent again" << std::endl;
                    } catch (const sdbus::Error& e) {
                        std::cerr << "shipd is back, but RegisterAgent failed: " << e.getMessage()
                                  << std::endl;
                    }
                } else {
                    ++it;
                    continue;
                }
                it = hub.events.erase(it);
            }
        };
        // A peer that is already connected will do; otherwise wait for one (or for the one asked for).
        for (const auto& p : hub.ListPeers())
            if (p.get<4>() && (ski.empty() || p.get<0>() == ski)) {
                ski = p.get<0>();
                break;
            }
        bool connected = false;
        for (const auto& p : hub.ListPeers())
            if (p.get<0>() == ski && p.get<4>()) connected = true;
        if (!connected) {
            std::cerr << "waiting for " << (ski.empty() ? std::string("a SHIP peer") : ski)
                      << " to connect to shipd " << own << " …" << std::endl;
            const bool ok = pump(*bus, stop_fd, deadline, [&] {
                report();
                for (; !hub.events.empty(); hub.events.pop_front())
                    if (hub.events.front().name == "connected" &&
                        (ski.empty() || hub.events.front().ski == ski)) {
                        ski = hub.events.front().ski;
                        hub.events.clear();
                        return true;
                    }
                return false;
            });
            if (!ok) {
                std::cerr << "no peer connected in time" << std::endl;
                return 1;
            }
        }
        report();
        if (pair_only) {
            std::cerr << "paired with " << ski << " and connected" << std::endl;
            close(stop_fd);
            return 0;
        }

        const std::int64_t msg_counter = 1;
        // Reconnect: sent again whenever the peer comes back; NotConnected only means "not yet".
        bool sent = false;
        auto send_read = [&] {
            try {
                hub.SendData(ski, discovery_read(msg_counter));
                sent = true;
                std::cerr << "sent a NodeManagement detailed-discovery read to " << ski << std::endl;
            } catch (const sdbus::Error& e) {
                if (e.getName() != "org.shipd.Hub1.Error.NotConnected") throw;
                std::cerr << ski << " is not connected; waiting for it to come back" << std::endl;
            }
        };
        send_read();
        rapidjson::Document reply;
        const bool got = pump(*bus, stop_fd, deadline, [&] {
            report();
            for (; !hub.events.empty(); hub.events.pop_front()) {
                const Event& e = hub.events.front();
                if (e.ski == ski && e.name == "disconnected") {
                    sent = false;
                    std::cerr << ski << " went away; shipd dials it again, waiting" << std::endl;
                }
                if (e.ski == ski && e.name == "connected" && !sent) send_read();
                if (e.name != "data" || e.ski != ski) continue;
                reply.Parse(e.json.c_str());
                if (!reply.HasParseError() && is_discovery(reply, "reply") &&
                    number_at(reply, "/datagram/header/msgCounterReference") == msg_counter)
                    return true;
            }
            return false;
        });
        if (!got) {
            std::cerr << "no discovery reply from " << ski << " in time" << std::endl;
            return 1;
        }
        print_reply(ski, reply);
        close(stop_fd);
        return 0;
    } catch (const sdbus::Error& e) {
        std::cerr << "shipd-em-example: " << e.getName() << ": " << e.getMessage() << std::endl;
        return 1;
    }
}
