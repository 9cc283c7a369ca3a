// The D-Bus service on a private dbus-daemon, driven through the generated proxy: methods answer what the
// hub says, hub errors become org.shipd.Hub1.Error.<Name>, properties read and write, signals and per-peer
// objects follow the hub's events, and after stop nothing is emitted and every method says ShuttingDown.
#include <catch2/catch.hpp>

#include <algorithm>
#include <stop_token>

#include "dbus_service.hpp"
#include "dbus_test_support.hpp"

using namespace ship::test;
using ship::daemon::DbusService;
using ship::hub::PeerInfo;

namespace {

constexpr const char* ski_a = "5a1c0de5a1c0de5a1c0de5a1c0de5a1c0de5a1c0";
constexpr const char* ski_b = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
const std::string peer_path_a = std::string("/org/shipd/Hub1/peer/") + ski_a;
const std::string peer_path_b = std::string("/org/shipd/Hub1/peer/") + ski_b;

PeerInfo peer_a() {
    PeerInfo p;
    p.ski = ski_a;
    p.ship_id = "Wallbox-A";
    p.state = ship::PeerState::completed;
    p.trusted = true;
    p.connected = true;
    p.brand = "Acme";
    p.model = "WB1";
    p.type = "EVSE";
    p.host = "192.0.2.10";
    p.port = 4712;
    p.connected_since_us = 1700000000000000;
    p.messages_in = 3;
    return p;
}

// A bus, a strand, the fake hub and the service under test, started; plus a client on the same bus.
ship::daemon::DbusServiceConfig service_config(const PrivateBus& bus, std::string version = "9.8.7-test",
                                               std::function<void(const std::string&)> on_failure = {}) {
    return ship::daemon::DbusServiceConfig{ship::daemon::BusKind::address, bus.address(), std::move(version),
                                           std::move(on_failure)};
}

// A real strand and loop on their own thread (as in shipd), the fake hub and the service on that loop.
struct World {
    TempDir dir;
    PrivateBus bus{dir.path};
    TestLoop strand;
    FakeHub hub{strand};
    std::stop_source& stop = strand.stop_source();
    std::unique_ptr<DbusService> service;
    std::unique_ptr<Client> client;

    World() {
        hub.peers[ski_a] = peer_a();
        ship::hub::DiscoveredService d;
        d.ski = ski_b;
        d.ship_id = "HeatPump-B";
        d.brand = "Heat";
        d.model = "HP9";
        d.type = "HeatPump";
        d.host = "fe80::1%eth0";
        d.port = 4769;
        hub.discovered.push_back(d);
        service = std::make_unique<DbusService>(strand.loop(), service_config(bus), hub, stop.get_token());
        service->start();
        strand.start();
        client = std::make_unique<Client>(bus.address());
    }
    ~World() {
        client.reset();
        strand.stop(); // the loop ends first: the service is then touched by this thread alone
        service.reset();
        CHECK(hub.off_strand_calls == 0);
    }
    // Runs hub events on the strand, as the hub does.
    void on_strand(const std::function<void(DbusService&)>& fn) {
        strand.run([&] { fn(*service); });
    }
    std::vector<std::string> calls() {
        std::vector<std::string> out;
        strand.run([&] { out = hub.calls; });
        return out;
    }
    int persisted_waits() {
        int n = 0;
        strand.run([&] { n = hub.persisted_waits; });
        return n;
    }
};

// Expects `call` to fail with the D-Bus error `name` whose message contains `mention`.
template <typename Call>
void require_error(Call&& call, const std::string& name, const std::string& mention) {
    try {
        call();
        FAIL("no D-Bus error, expected " << name);
    } catch (const sdbus::Error& e) {
        CHECK(e.getName() == name);
        CHECK_THAT(e.getMessage(), Catch::Contains(mention));
    }
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

} // namespace

TEST_CASE("hub properties read through D-Bus", "[daemon][dbus]") {
    World w;
    auto& hub = w.client->hub();
    CHECK(hub.LocalSKI() == "00112233445566778899aabbccddeeff00112233");
    CHECK(hub.ShipID() == "shipd-test-1");
    CHECK(hub.Port() == 4711);
    CHECK(hub.Version() == "9.8.7-test");
    CHECK(hub.QRCode() == "SHIP;SKI:00112233445566778899aabbccddeeff00112233;ID:shipd-test-1;ENDSHIP;");
    CHECK_FALSE(hub.AutoAccept());
    CHECK(hub.WaitForTrust());
}

TEST_CASE("a property the hub changes by itself is re-read and announced", "[daemon][dbus]") {
    World w;
    w.client->hub().Port(); // the match rules are in place once a call has returned
    w.on_strand([&](DbusService& s) {
        w.hub.own_port = 40000; // e.g. started with --port 0
        s.hub_properties_changed();
    });
    REQUIRE(w.client->wait_signal("PropertiesChanged", "/org/shipd/Hub1"));
    const auto sig = *w.client->find("PropertiesChanged", "/org/shipd/Hub1");
    CHECK(sig.args == std::vector<std::string>{"org.shipd.Hub1", "Port=40000"});
    CHECK(w.client->hub().Port() == 40000);
}

TEST_CASE("every method returns what the hub says", "[daemon][dbus]") {
    World w;
    auto& hub = w.client->hub();

    const auto peers = hub.ListPeers();
    REQUIRE(peers.size() == 1);
    CHECK(peers[0].get<0>() == ski_a);
    CHECK(peers[0].get<1>() == "Wallbox-A");
    CHECK(peers[0].get<2>() == "completed");
    CHECK(peers[0].get<3>() == true);
    CHECK(peers[0].get<4>() == true);

    const auto discovered = hub.ListDiscovered();
    REQUIRE(discovered.size() == 1);
    CHECK(discovered[0].get<0>() == ski_b);
    CHECK(discovered[0].get<1>() == "HeatPump-B");
    CHECK(discovered[0].get<2>() == "Heat");
    CHECK(discovered[0].get<3>() == "HP9");
    CHECK(discovered[0].get<4>() == "HeatPump");
    CHECK(discovered[0].get<5>() == "fe80::1%eth0");
    CHECK(discovered[0].get<6>() == 4769);

    // The SKI argument is passed as typed; the hub normalises it.
    hub.Trust("B0B0 B0B0-" + std::string(ski_b).substr(8));
    hub.Connect(ski_b, "192.0.2.20", 4711);
    hub.SendData(ski_a, R"({"datagram":{"header":{}}})");
    hub.Disconnect(ski_a, "maintenance");
    hub.CancelPairing(ski_b);
    hub.Untrust(ski_b);
    CHECK(w.calls() == std::vector<std::string>{
                           std::string("trust ") + ski_b,
                           std::string("connect ") + ski_b + " 192.0.2.20 4711",
                           std::string("send_data ") + ski_a + R"( {"datagram":{"header":{}}})",
                           std::string("disconnect ") + ski_a + " maintenance",
                           std::string("cancel_pairing ") + ski_b,
                           std::string("untrust ") + ski_b,
                       });
}

TEST_CASE("hub errors become named D-Bus errors with the hub's message", "[daemon][dbus]") {
    World w;
    auto& hub = w.client->hub();
    require_error([&] { hub.Trust("not-a-ski"); }, "org.shipd.Hub1.Error.InvalidSKI", "not-a-ski");
    require_error([&] { hub.Untrust(ski_b); }, "org.shipd.Hub1.Error.UnknownPeer", ski_b);
    require_error([&] { hub.Connect(ski_b, "192.0.2.1", 4711); }, "org.shipd.Hub1.Error.NotTrusted", ski_b);
    require_error([&] { hub.Connect(ski_a, "192.0.2.1", 0); }, "org.shipd.Hub1.Error.InvalidArgument",
                  "port 0");
    require_error([&] { hub.SendData(ski_a, "{not json"); }, "org.shipd.Hub1.Error.InvalidJSON", "{not json");
    w.strand.run([&] { w.hub.peers[ski_a].connected = false; });
    require_error([&] { hub.SendData(ski_a, "{}"); }, "org.shipd.Hub1.Error.NotConnected", ski_a);
    require_error([&] { hub.Disconnect(ski_a, ""); }, "org.shipd.Hub1.Error.NotConnected", ski_a);
    // A wrong D-Bus type never reaches the service: sdbus refuses it.
    require_error([&] { hub.raw().callMethod("Trust").onInterface("org.shipd.Hub1").withArguments(42); },
                  "org.freedesktop.DBus.Error.InvalidArgs", "");
    CHECK(w.calls().empty());
}

TEST_CASE("Trust, Untrust, Connect and CancelPairing answer only once the change is stored",
          "[daemon][dbus]") {
    World w;
    auto& hub = w.client->hub();
    hub.Trust(ski_b);
    hub.Connect(ski_b, "192.0.2.20", 4711);
    hub.SendData(ski_a, R"({"datagram":{}})");
    hub.Disconnect(ski_a, "");
    // Trust and Connect waited for when_persisted; SendData and Disconnect store nothing.
    CHECK(w.persisted_waits() == 2);

    // A write that failed is the caller's error, although the hub took the change.
    w.strand.run([&] { w.hub.persist_error = "No space left on device"; });
    require_error([&] { hub.Trust(ski_a); }, "org.shipd.Hub1.Error.InvalidArgument",
                  "could not store the change on disk: No space left on device");
    require_error([&] { hub.Connect(ski_a, "192.0.2.1", 4711); }, "org.shipd.Hub1.Error.InvalidArgument",
                  "No space left");
    require_error([&] { hub.CancelPairing(ski_b); }, "org.shipd.Hub1.Error.InvalidArgument", "No space left");
    require_error([&] { hub.Untrust(ski_b); }, "org.shipd.Hub1.Error.InvalidArgument", "No space left");
    CHECK(w.persisted_waits() == 6);
    // A call the hub refused waits for nothing.
    require_error([&] { hub.Trust("not-a-ski"); }, "org.shipd.Hub1.Error.InvalidSKI", "not-a-ski");
    CHECK(w.persisted_waits() == 6);
}

TEST_CASE("AutoAccept and WaitForTrust writes reach the hub and are announced", "[daemon][dbus]") {
    World w;
    auto& hub = w.client->hub();
    hub.AutoAccept(true);
    CHECK(hub.AutoAccept());
    REQUIRE(w.client->wait_signal("PropertiesChanged", "/org/shipd/Hub1"));
    CHECK(w.client->find("PropertiesChanged")->args ==
          std::vector<std::string>{"org.shipd.Hub1", "AutoAccept=true"});
    w.client->clear();

    hub.WaitForTrust(false);
    CHECK_FALSE(hub.WaitForTrust());
    REQUIRE(w.client->wait_signal("PropertiesChanged", "/org/shipd/Hub1"));
    CHECK(w.client->find("PropertiesChanged")->args ==
          std::vector<std::string>{"org.shipd.Hub1", "WaitForTrust=false"});

    bool auto_accept = false, wait_for_trust = true;
    w.strand.run([&] {
        auto_accept = w.hub.auto_accept_;
        wait_for_trust = w.hub.wait_for_trust_;
    });
    CHECK(auto_accept);
    CHECK_FALSE(wait_for_trust);
    // Read-only properties refuse a write.
    require_error(
        [&] { hub.raw().setProperty("Port").onInterface("org.shipd.Hub1").toValue(std::uint16_t{1}); },
        "org.freedesktop.DBus.Error.PropertyReadOnly", "");
}

TEST_CASE("hub events arrive as signals with their arguments, in order", "[daemon][dbus]") {
    World w;
    w.client->hub().Port();
    w.on_strand([&](DbusService& s) {
        s.peer_state_changed(ski_b, ship::PeerState::received_pairing_request, "");
        s.peer_ship_id_changed(ski_b, "HeatPump-B");
        s.peer_connected(ski_b);
        s.data_received(ski_b, R"({"datagram":{}})");
        s.discovered_changed();
        s.peer_state_changed(ski_b, ship::PeerState::error, "hello timed out");
        s.peer_disconnected(ski_b, "closed by peer");
    });
    REQUIRE(w.client->wait_signal("PeerDisconnected"));
    const auto sigs = w.client->signals();
    REQUIRE(sigs.size() == 7);
    CHECK(sigs[0].name == "PeerStateChanged");
    CHECK(sigs[0].args == std::vector<std::string>{ski_b, "received-pairing-request", ""});
    CHECK(sigs[1].name == "PeerShipIDChanged");
    CHECK(sigs[1].args == std::vector<std::string>{ski_b, "HeatPump-B"});
    CHECK(sigs[2].name == "PeerConnected");
    CHECK(sigs[2].args == std::vector<std::string>{ski_b});
    CHECK(sigs[3].name == "DataReceived");
    CHECK(sigs[3].args == std::vector<std::string>{ski_b, R"({"datagram":{}})"});
    CHECK(sigs[4].name == "DiscoveredChanged");
    CHECK(sigs[5].args == std::vector<std::string>{ski_b, "error", "hello timed out"});
    CHECK(sigs[6].name == "PeerDisconnected");
    CHECK(sigs[6].args == std::vector<std::string>{ski_b, "closed by peer"});
}

TEST_CASE("per-peer objects follow the hub through ObjectManager", "[daemon][dbus]") {
    World w;
    auto& hub = w.client->hub();

    // A peer known at start is there already, with its properties.
    const auto managed = hub.GetManagedObjects();
    REQUIRE(managed.count(sdbus::ObjectPath(peer_path_a)) == 1);
    const auto& props = managed.at(sdbus::ObjectPath(peer_path_a)).at("org.shipd.Hub1.Peer");
    CHECK(variant_text(props.at("SKI")) == ski_a);
    CHECK(variant_text(props.at("State")) == "completed");
    CHECK(variant_text(props.at("Port")) == "4712");
    CHECK(variant_text(props.at("ConnectedSince")) == "1700000000000000");
    auto& a = w.client->peer(ski_a);
    CHECK(a.ShipID() == "Wallbox-A");
    CHECK(a.Brand() == "Acme");
    CHECK(a.Host() == "192.0.2.10");
    CHECK(a.Trusted());
    CHECK(a.Connected());
    CHECK(a.MessagesIn() == 3);

    // A new peer appears with InterfacesAdded carrying its properties.
    PeerInfo b;
    b.ski = ski_b;
    b.state = ship::PeerState::received_pairing_request;
    w.on_strand([&](DbusService& s) { s.peer_added(b); });
    REQUIRE(w.client->wait_signal("InterfacesAdded", peer_path_b));
    const auto added = w.client->find("InterfacesAdded", peer_path_b)->args;
    CHECK(contains(added, "org.shipd.Hub1.Peer"));
    CHECK(contains(added, std::string("org.shipd.Hub1.Peer.SKI=") + ski_b));
    CHECK(contains(added, "org.shipd.Hub1.Peer.State=received-pairing-request"));
    CHECK(contains(added, "org.shipd.Hub1.Peer.Trusted=false"));

    // A change emits PropertiesChanged on the peer's path, naming only what changed.
    auto& pb = w.client->peer(ski_b);
    CHECK(pb.State() == "received-pairing-request");
    b.state = ship::PeerState::completed;
    b.trusted = true;
    b.connected = true;
    w.on_strand([&](DbusService& s) { s.peer_changed(b); });
    REQUIRE(w.client->wait_signal("PropertiesChanged", peer_path_b));
    CHECK(
        w.client->find("PropertiesChanged", peer_path_b)->args ==
        std::vector<std::string>{"org.shipd.Hub1.Peer", "Connected=true", "State=completed", "Trusted=true"});
    CHECK(pb.State() == "completed");

    // Removal: InterfacesRemoved, and the object is gone.
    w.on_strand([&](DbusService& s) { s.peer_removed(ski_b); });
    REQUIRE(w.client->wait_signal("InterfacesRemoved", peer_path_b));
    CHECK(contains(w.client->find("InterfacesRemoved", peer_path_b)->args, "org.shipd.Hub1.Peer"));
    CHECK(hub.GetManagedObjects().count(sdbus::ObjectPath(peer_path_b)) == 0);
    require_error([&] { pb.State(); }, "org.freedesktop.DBus.Error.UnknownObject", "");
}

TEST_CASE("after stop no signal leaves and every method replies ShuttingDown", "[daemon][dbus]") {
    World w;
    auto& hub = w.client->hub();
    hub.Port();
    w.stop.request_stop();

    require_error([&] { hub.Trust(ski_a); }, "org.shipd.Hub1.Error.ShuttingDown", "shutting down");
    require_error([&] { hub.ListPeers(); }, "org.shipd.Hub1.Error.ShuttingDown", "shutting down");
    require_error([&] { hub.AutoAccept(true); }, "org.shipd.Hub1.Error.ShuttingDown", "shutting down");
    CHECK(hub.LocalSKI() == "00112233445566778899aabbccddeeff00112233"); // reading still works

    PeerInfo b;
    b.ski = ski_b;
    w.on_strand([&](DbusService& s) {
        s.peer_connected(ski_a);
        s.peer_disconnected(ski_a, "shutdown");
        s.peer_state_changed(ski_a, ship::PeerState::none, "");
        s.peer_ship_id_changed(ski_a, "x");
        s.discovered_changed();
        s.data_received(ski_a, "{}");
        s.peer_added(b);
        b.connected = true;
        s.peer_changed(b);
        s.peer_removed(ski_a);
        w.hub.own_port = 1;
        s.hub_properties_changed();
    });
    // Anything emitted above was sent before this reply and is processed before the call returns here:
    // D-Bus keeps the order of one sender's messages to one receiver.
    require_error([&] { hub.CancelPairing(ski_a); }, "org.shipd.Hub1.Error.ShuttingDown", "");
    w.client->drain();
    CHECK(w.client->signals().empty());
    CHECK(w.calls().empty());
}

// Issue 13: calls in flight when shipd stops. Each gets an answer (its result, or ShuttingDown once the stop
// was seen), none is left to the caller's timeout, and the loop never waits on anything while answering.
TEST_CASE("128 calls in flight when the stop comes are each answered, none left to time out",
          "[daemon][dbus]") {
    World w;
    auto& proxy = w.client->hub().raw();
    constexpr int in_flight = 128;
    int answered = 0, shutting_down = 0, other_errors = 0;
    for (int i = 0; i < in_flight; ++i) {
        auto call = proxy.createMethodCall("org.shipd.Hub1", i % 2 ? "ListPeers" : "Trust");
        if (i % 2 == 0) call << std::string(ski_b);
        proxy.callMethod(
            call,
            [&](sdbus::MethodReply&, const sdbus::Error* error) {
                ++answered;
                if (!error) return;
                (error->getName() == "org.shipd.Hub1.Error.ShuttingDown" ? shutting_down : other_errors) += 1;
            },
            10'000'000);
        if (i == in_flight / 2) w.stop.request_stop(); // from another thread, while the loop works
    }
    const auto started = std::chrono::steady_clock::now();
    REQUIRE(w.client->wait_for([&] { return answered == in_flight; }, 5s));
    CHECK(std::chrono::steady_clock::now() - started < 2s);
    CHECK(shutting_down > 0);
    CHECK(other_errors == 0);
}

TEST_CASE("a second service on the same bus cannot take the name", "[daemon][dbus]") {
    World w;
    TestLoop strand2;
    FakeHub hub2{strand2};
    DbusService second(strand2.loop(), service_config(w.bus, "x"), hub2, strand2.stop_source().get_token());
    CHECK_THROWS_AS(second.start(), sdbus::Error);
    CHECK(w.client->hub().ShipID() == "shipd-test-1"); // the first one still serves
}

TEST_CASE("the bus going away is reported once", "[daemon][dbus]") {
    TempDir dir;
    auto bus = std::make_unique<PrivateBus>(dir.path);
    TestLoop strand;
    FakeHub hub{strand};
    std::promise<std::string> failed;
    auto failure = failed.get_future();
    int reports = 0;
    DbusService service(strand.loop(),
                        service_config(*bus, "x",
                                       [&](const std::string& why) {
                                           if (reports++ == 0) failed.set_value(why);
                                       }),
                        hub, strand.stop_source().get_token());
    service.start();
    strand.start();
    bus.reset(); // kills dbus-daemon
    REQUIRE(failure.wait_for(deadline) == std::future_status::ready);
    CHECK_FALSE(failure.get().empty());
    strand.run([] {}); // a few more turns of the loop: still one report
    strand.stop();
    CHECK(reports == 1);
}

// Soak finding 1: shipd's hub accepts and dials while the service is still starting. A peer that reached data
// exchange before org.shipd.Hub1 was owned had its PeerConnected sent from the unique name alone, which no
// app (matching on the well-known name) receives; its first signal was then PeerDisconnected.
TEST_CASE("a peer connected before the name is owned is announced once the service serves",
          "[daemon][dbus]") {
    TempDir dir;
    PrivateBus bus{dir.path};
    TestLoop strand;
    FakeHub hub{strand};
    hub.peers[ski_a] = peer_a();                           // connected
    auto client = std::make_unique<Client>(bus.address()); // subscribed before the service exists
    auto service = std::make_unique<DbusService>(strand.loop(), service_config(bus), hub,
                                                 strand.stop_source().get_token());
    service->peer_connected(ski_a); // as the hub does, before the service has started
    service->data_received(ski_a, R"({"datagram":{}})");
    service->start();
    strand.start();
    strand.run([&] { service->peer_disconnected(ski_a, "closed by peer"); });

    REQUIRE(client->wait_signal("PeerDisconnected"));
    std::vector<std::string> seen;
    for (const auto& s : client->signals())
        if (s.name == "PeerConnected" || s.name == "PeerDisconnected" || s.name == "DataReceived")
            seen.push_back(s.name + " " + s.args.at(0));
    CHECK(seen == std::vector<std::string>{std::string("PeerConnected ") + ski_a,
                                           std::string("PeerDisconnected ") + ski_a});

    client.reset();
    strand.stop();
    service.reset();
}
