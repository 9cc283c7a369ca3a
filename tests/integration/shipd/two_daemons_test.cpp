// Two real shipd processes, each on its own private bus, paired and driven over D-Bus only — as an
// energy-manager app or an admin with busctl would.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>

#include <catch2/catch.hpp>

#include "../daemon/dbus_test_support.hpp"
#include "shipd_process.hpp"

using namespace std::chrono_literals;
using ship::test::Client;
using ship::test::PrivateBus;
using ship::test::ShipdProcess;
using ship::test::TempDir;

namespace {

// One node: its bus, its daemon, and a D-Bus client on that bus.
struct Node {
    Node(const std::filesystem::path& dir, const std::string& name, std::uint16_t listen_port)
        : home(dir / name)
        , bus((std::filesystem::create_directories(home), home)) {
        start(listen_port);
    }

    void start(std::uint16_t listen_port) {
        client.reset();
        process = std::make_unique<ShipdProcess>(
            std::vector<std::string>{"--state-dir", (home / "state").string(), "--port",
                                     std::to_string(listen_port), "--no-mdns", "--bus-address", bus.address(),
                                     "--log-level", "debug"},
            home / "shipd.log");
        INFO(process->log());
        REQUIRE(process->wait_notify("READY=1", 10s));
        client = std::make_unique<Client>(bus.address());
        ski = client->hub().LocalSKI();
        port = client->hub().Port();
    }

    bool connected_to(const std::string& peer) {
        for (const auto& p : client->hub().ListPeers())
            if (p.get<0>() == peer) return p.get<4>();
        return false;
    }

    int count(const std::string& signal, const std::string& ski_arg) const {
        int n = 0;
        for (const auto& s : client->signals())
            if (s.name == signal && !s.args.empty() && s.args[0] == ski_arg) ++n;
        return n;
    }

    std::filesystem::path home;
    PrivateBus bus;
    std::unique_ptr<ShipdProcess> process;
    std::unique_ptr<Client> client;
    std::string ski;
    std::uint16_t port = 0;
};

// Sanitizer builds run the daemon several times slower; tests/run.sh says by how much.
std::chrono::milliseconds scaled(std::chrono::milliseconds bound) {
    const char* scale = std::getenv("SHIPD_TEST_TIME_SCALE");
    return bound * (scale ? std::max(1, std::atoi(scale)) : 1);
}

std::string d_bus_error_name(const std::function<void()>& call) {
    try {
        call();
    } catch (const sdbus::Error& e) {
        return e.getName() + ": " + e.getMessage();
    }
    return "no error";
}

// Both sides trust each other and `a` dials `b`; returns when both report PeerConnected.
void pair_and_connect(Node& a, Node& b) {
    a.client->hub().Trust(b.ski);
    b.client->hub().Trust(a.ski);
    a.client->hub().Connect(b.ski, "127.0.0.1", b.port);
    REQUIRE(a.client->wait_for([&] { return a.count("PeerConnected", b.ski) == 1; }, 15s));
    REQUIRE(b.client->wait_for([&] { return b.count("PeerConnected", a.ski) == 1; }, 15s));
}

const std::string spine_read =
    R"({"datagram":{"header":{"specificationVersion":"1.2.0","addressSource":{"device":"Demo-EVSE-234567890","entity":[0],"feature":0},"addressDestination":{"device":"Demo-HEMS-123456789","entity":[0],"feature":0},"msgCounter":1,"cmdClassifier":"read"},"payload":{"cmd":[{"nodeManagementDetailedDiscoveryData":{}}]}}})";

} // namespace

TEST_CASE("two shipd pair over D-Bus, exchange SPINE data, and part on Untrust", "[shipd]") {
    TempDir dir;
    Node a(dir.path, "a", 0), b(dir.path, "b", 0);
    pair_and_connect(a, b);
    CHECK(a.connected_to(b.ski));
    CHECK(b.connected_to(a.ski));

    SECTION("SendData arrives as DataReceived, byte-equal plain JSON") {
        a.client->hub().SendData(b.ski, spine_read);
        REQUIRE(b.client->wait_for([&] { return b.client->find("DataReceived").has_value(); }));
        const auto got = *b.client->find("DataReceived");
        CHECK(got.args.at(0) == a.ski);
        CHECK(got.args.at(1) == spine_read);
    }

    SECTION("Untrust ends the connection: PeerDisconnected on both sides, and no redial") {
        a.client->hub().Untrust(b.ski);
        REQUIRE(a.client->wait_for([&] { return a.count("PeerDisconnected", b.ski) == 1; }));
        REQUIRE(b.client->wait_for([&] { return b.count("PeerDisconnected", a.ski) == 1; }));
        CHECK_FALSE(a.connected_to(b.ski));
        // b still trusts a but has no address for it (a dialled): nothing reconnects while a refuses.
        CHECK(a.count("PeerConnected", b.ski) == 1);
    }
}

TEST_CASE("a restarted daemon is reconnected by its trusted peer without any call", "[shipd]") {
    TempDir dir;
    const std::uint16_t b_port = ship::test::free_port();
    Node a(dir.path, "a", 0), b(dir.path, "b", b_port);
    pair_and_connect(a, b);

    b.process->signal(SIGTERM);
    REQUIRE(b.process->wait_exit(5s) == 0);
    REQUIRE(a.client->wait_for([&] { return a.count("PeerDisconnected", b.ski) == 1; }));

    b.start(b_port);
    // a redials by policy (first attempt 0–3 s, second 3–10 s): no Connect, no Trust.
    INFO(a.process->log());
    REQUIRE(a.client->wait_for([&] { return a.count("PeerConnected", b.ski) == 2; }, 30s));
    REQUIRE(b.client->wait_for([&] { return b.count("PeerConnected", a.ski) == 1; }, 10s));
    // Alternation per SKI: connected, disconnected, connected.
    CHECK(a.count("PeerDisconnected", b.ski) == 1);
}

TEST_CASE("bad D-Bus calls get the named errors with the offending value", "[shipd]") {
    TempDir dir;
    Node a(dir.path, "a", 0);
    auto& hub = a.client->hub();
    const std::string stranger = "0123456789abcdef0123456789abcdef01234567";

    CHECK_THAT(d_bus_error_name([&] { hub.Trust("not-a-ski"); }),
               Catch::StartsWith("org.shipd.Hub1.Error.InvalidSKI") && Catch::Contains("not-a-ski"));
    CHECK_THAT(d_bus_error_name([&] { hub.Connect(stranger, "127.0.0.1", 4711); }),
               Catch::StartsWith("org.shipd.Hub1.Error.NotTrusted") && Catch::Contains(stranger));
    CHECK_THAT(d_bus_error_name([&] { hub.CancelPairing(stranger); }),
               Catch::StartsWith("org.shipd.Hub1.Error.UnknownPeer"));
    hub.Trust(stranger);
    CHECK_THAT(d_bus_error_name([&] { hub.SendData(stranger, spine_read); }),
               Catch::StartsWith("org.shipd.Hub1.Error.NotConnected") && Catch::Contains(stranger));
    CHECK_THAT(d_bus_error_name([&] { hub.SendData(stranger, "{\"datagram\":"); }),
               Catch::StartsWith("org.shipd.Hub1.Error.InvalidJSON"));
    CHECK_THAT(d_bus_error_name([&] { hub.Disconnect(stranger, ""); }),
               Catch::StartsWith("org.shipd.Hub1.Error.NotConnected"));
    // The daemon is still there and still answers.
    CHECK(hub.LocalSKI() == a.ski);
}

TEST_CASE(
    "SIGTERM with a live connection and dials in flight: exit 0 within 1 s, the peer sees a SHIP close, "
    "no signal after STOPPING=1",
    "[shipd]") {
    TempDir dir;
    Node a(dir.path, "a", 0), b(dir.path, "b", 0);
    pair_and_connect(a, b);

    // A listener that never accepts: dials to it stay in flight (TCP connected, TLS never answered).
    const int tarpit = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(tarpit, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(tarpit, 64) == 0);
    socklen_t len = sizeof(addr);
    getsockname(tarpit, reinterpret_cast<sockaddr*>(&addr), &len);
    for (int i = 0; i < 5; ++i) {
        std::string ski(40, '0');
        ski.back() = static_cast<char>('1' + i);
        a.client->hub().Trust(ski);
        // Connect replies when the dial ends; these never do before the stop (ShuttingDown then).
        a.client->connect_async(ski, "127.0.0.1", ntohs(addr.sin_port));
    }
    a.client->drain();
    a.client->clear();

    const auto t0 = std::chrono::steady_clock::now();
    a.process->signal(SIGTERM);
    const auto bound = scaled(1000ms);
    const auto status = a.process->wait_exit(bound);
    const auto took = std::chrono::steady_clock::now() - t0;
    close(tarpit);
    INFO(a.process->log());
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    CHECK(took < bound);
    CHECK(a.process->wait_notify("STOPPING=1", 0ms));

    // b was told with a SHIP connectionClose, not a dropped socket.
    REQUIRE(b.client->wait_for([&] { return b.count("PeerDisconnected", a.ski) == 1; }));
    CHECK_THAT(b.client->find("PeerDisconnected")->args.at(1), Catch::Contains("closed by the peer"));

    // a said nothing on D-Bus once stopping (its hub reports b's end, the service must keep it to itself).
    a.client->wait_for([] { return false; }, 300ms);
    CHECK(a.count("PeerDisconnected", b.ski) == 0);
}
