// Pairing end to end (issue 15): a real shipd on a private bus, real SHIP peers over loopback TLS (built on
// lib/, tests/integration/hostile/scripted_peer.hpp), and agents exported by the test's own bus connections
// (two "apps") or by a `shipctl agent` process. Every wait has a deadline; none sleeps to hope.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "../daemon/dbus_test_support.hpp"
#include "../net/harness.hpp"
#include "../shipctl/child.hpp"
#include "../shipd/shipd_process.hpp"
#include "hub1_adaptor.hpp"
#include "pairing_peer.hpp"

namespace ship::test::pairing {
namespace {

using Clock = std::chrono::steady_clock;
using Details = std::map<std::string, sdbus::Variant>;

int time_scale() {
    const char* s = std::getenv("SHIPD_TEST_TIME_SCALE");
    const int n = s ? std::atoi(s) : 1;
    return n > 0 ? n : 1;
}

std::chrono::milliseconds scaled(std::chrono::milliseconds bound) {
    return bound * time_scale();
}

std::uint64_t now_us() {
    using namespace std::chrono;
    return static_cast<std::uint64_t>(
        duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

tls::Identity identity(const std::string& name) {
    return net::test::make_identity("pairing-" + name);
}

std::string peer_path(const std::string& ski) {
    return "/org/shipd/Hub1/peer/" + ski;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size()))
        ++n;
    return n;
}

// One shipd with its own state dir and bus, and a D-Bus client watching it (the test's view, not an app).
class Daemon {
public:
    explicit Daemon(const std::string& config_json = "{}") {
        bus_ = std::make_unique<PrivateBus>(dir_.path);
        std::ofstream(dir_.path / "shipd.conf") << config_json << "\n";
        start();
    }
    ~Daemon() {
        dbus_.reset();
        if (process_) {
            process_->signal(SIGTERM);
            process_->wait_exit(scaled(5s));
        }
        process_.reset(); // SIGKILL if it is still there
        bus_.reset();
    }

    void start() {
        process_ = std::make_unique<ShipdProcess>(
            std::vector<std::string>{"--config", (dir_.path / "shipd.conf").string(), "--state-dir",
                                     (dir_.path / "state").string(), "--port", "0", "--no-mdns",
                                     "--bus-address", bus_->address(), "--log-level", "debug"},
            dir_.path / "shipd.log");
        if (!process_->wait_notify("READY=1", scaled(10s)))
            throw std::runtime_error("shipd did not become ready:\n" + process_->log());
        dbus_ = std::make_unique<Client>(bus_->address());
        ski_ = dbus_->hub().LocalSKI();
        port_ = dbus_->hub().Port();
    }
    // SIGTERM, a clean exit, and a new shipd on the same state dir and bus.
    void restart() {
        dbus_.reset();
        process_->signal(SIGTERM);
        REQUIRE(process_->wait_exit(scaled(5s)) == 0);
        process_.reset();
        start();
    }
    void stop() {
        process_->signal(SIGTERM);
        REQUIRE(process_->wait_exit(scaled(5s)) == 0);
    }

    Client& dbus() { return *dbus_; }
    std::uint16_t port() const { return port_; }
    const std::string& address() const { return bus_->address(); }
    std::string log() const { return process_->log(); }

private:
    TempDir dir_;
    std::unique_ptr<PrivateBus> bus_;
    std::unique_ptr<ShipdProcess> process_;
    std::unique_ptr<Client> dbus_;
    std::string ski_;
    std::uint16_t port_ = 0;
};

// An app's pairing agent (org.shipd.Hub1.Agent1) on that app's own connection; its handlers run while the
// test pumps the connection. With `answer` set it answers at once, else the test answers later.
class TestAgent final : public sdbus::AdaptorInterfaces<org::shipd::Hub1::Agent1_adaptor> {
public:
    struct Ask {
        std::string peer, ski;
        Details details;
        std::optional<sdbus::Result<bool>> reply;
    };

    TestAgent(sdbus::IConnection& connection, std::string path, std::optional<bool> answer = std::nullopt)
        : AdaptorInterfaces(connection, std::move(path))
        , answer_(answer) {
        registerAdaptor();
    }
    ~TestAgent() { unregisterAdaptor(); }

    void answer(const std::string& ski, bool yes) {
        for (auto& a : asks)
            if (a.ski == ski && a.reply) {
                a.reply->returnResults(yes);
                a.reply.reset();
                return;
            }
        FAIL("no open AuthorizePeer for " << ski);
    }
    bool asked(const std::string& ski) const {
        return std::any_of(asks.begin(), asks.end(), [&](const Ask& a) { return a.ski == ski; });
    }
    const Ask& ask_of(const std::string& ski) const {
        for (const auto& a : asks)
            if (a.ski == ski) return a;
        throw std::runtime_error("not asked about " + ski);
    }
    std::optional<std::string> cancel_of(const std::string& ski) const {
        for (const auto& [peer, reason] : cancels)
            if (peer == peer_path(ski)) return reason;
        return std::nullopt;
    }

    std::vector<Ask> asks;
    std::vector<std::pair<std::string, std::string>> cancels;
    int releases = 0;

private:
    void AuthorizePeer(sdbus::Result<bool>&& result, sdbus::ObjectPath peer, Details details) override {
        Ask a{peer, details.count("SKI") ? details.at("SKI").get<std::string>() : std::string(), details,
              std::nullopt};
        if (answer_)
            result.returnResults(*answer_);
        else
            a.reply.emplace(std::move(result));
        asks.push_back(std::move(a));
    }
    void Cancel(const sdbus::ObjectPath& peer, const std::string& reason) override {
        cancels.emplace_back(peer, reason);
    }
    void Release() override { ++releases; }

    std::optional<bool> answer_;
};

// Pumps the clients (bus events wake it) and re-checks `done` at least every 20 ms for what happens in the
// peers' threads; false at the deadline.
bool eventually(std::vector<Client*> clients, const std::function<bool()>& done,
                std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    for (;;) {
        for (auto* c : clients)
            c->drain();
        if (done()) return true;
        if (Clock::now() >= until) return false;
        clients.front()->wait_for(done, 20ms);
        for (std::size_t i = 1; i < clients.size(); ++i)
            clients[i]->wait_for(done, 1ms);
    }
}

// PairingDeadline of a peer object, 0 once the object is gone (an untrusted peer that left is forgotten).
std::uint64_t deadline_or_gone(Client& c, const std::string& ski) {
    try {
        return c.peer(ski).PairingDeadline();
    } catch (const sdbus::Error& e) {
        if (e.getName() == "org.freedesktop.DBus.Error.UnknownObject") return 0;
        throw;
    }
}

std::optional<Signal> state_signal(Client& c, const std::string& ski, const std::string& state) {
    for (const auto& s : c.signals())
        if (s.name == "PeerStateChanged" && s.args.size() == 3 && s.args[0] == ski && s.args[1] == state)
            return s;
    return std::nullopt;
}

} // namespace

TEST_CASE("agent: approves one peer and denies another; the denied one asks again within the quiet period "
          "and is refused without reaching the agent",
          "[pairing][agent]") {
    Daemon shipd;
    Client app(shipd.address());
    TestAgent agent(app.connection(), "/test/agent");
    app.hub().RegisterAgent(sdbus::ObjectPath("/test/agent"));

    const auto denied_device = identity("denied");
    PendingPeer approved(shipd.port(), identity("approved"));
    PendingPeer denied(shipd.port(), denied_device);
    REQUIRE(eventually(
        {&app}, [&] { return agent.asked(approved.ski()) && agent.asked(denied.ski()); }, scaled(10s)));
    // Who is asking: SKI, address (the peer's own, from its first byte), the deadline.
    const auto& ask = agent.ask_of(approved.ski());
    CHECK(ask.peer == peer_path(approved.ski()));
    CHECK(ask.details.at("Host").get<std::string>() == "127.0.0.1");
    CHECK(ask.details.at("Port").get<std::uint16_t>() == approved.local_port());
    const auto deadline = ask.details.at("Deadline").get<std::uint64_t>();
    CHECK(deadline > now_us() + 100'000'000); // the default 120 s, minus what the test took so far
    CHECK(deadline < now_us() + 121'000'000);
    for (const char* key : {"SKI", "ShipID", "Brand", "Model", "Type", "Host", "Port", "Deadline"})
        CHECK(ask.details.count(key) == 1);

    agent.answer(approved.ski(), true);
    agent.answer(denied.ski(), false);
    REQUIRE(approved.wait([](const PeerOutcome& o) { return o.completed; }, scaled(10s)));
    REQUIRE(denied.wait([](const PeerOutcome& o) { return o.ended; }, scaled(10s)));
    CHECK(denied.outcome().aborted);
    CHECK(denied.outcome().close_code == 4452);
    auto& watch = shipd.dbus();
    REQUIRE(eventually(
        {&watch}, [&] { return state_signal(watch, denied.ski(), "error").has_value(); }, scaled(5s)));
    CHECK_THAT(state_signal(watch, denied.ski(), "error")->args[2], Catch::Contains("denied by the agent"));
    CHECK(watch.peer(approved.ski()).Trusted());
    CHECK_FALSE(agent.cancel_of(approved.ski())); // the agent decided: nothing to cancel
    CHECK_FALSE(agent.cancel_of(denied.ski()));

    // The denied device asks again at once: refused before the upgrade, the agent never hears of it.
    const std::size_t asked_before = agent.asks.size();
    watch.clear();
    PendingPeer again(shipd.port(), denied_device);
    REQUIRE(again.wait([](const PeerOutcome& o) { return o.ended; }, scaled(10s)));
    CHECK(again.outcome().http_status == 403);
    CHECK_FALSE(again.outcome().cmi);
    eventually(
        {&app, &watch}, [] { return false; }, 200ms); // anything in flight would arrive now
    CHECK(agent.asks.size() == asked_before);
    CHECK_FALSE(state_signal(watch, denied.ski(), "received-pairing-request"));
    CHECK(count(shipd.log(), "its pairing was denied less than 600 s ago") == 1);

    // shipd stops: the agent is released.
    shipd.stop();
    REQUIRE(eventually(
        {&app}, [&] { return agent.releases == 1; }, scaled(5s)));
}

TEST_CASE(
    "deadline: a request nobody answers expires at pairing_timeout with a SHIP abort, a PeerStateChanged "
    "error and Cancel to the agent; PairingDeadline says when",
    "[pairing][deadline]") {
    Daemon shipd(R"({"pairing_timeout": 2})");
    auto& watch = shipd.dbus();
    CHECK(watch.hub().PairingTimeout() == 2u);
    CHECK_THROWS_AS(watch.hub().PairingTimeout(0u), sdbus::Error);
    Client app(shipd.address());
    TestAgent agent(app.connection(), "/test/silent"); // asked, never answers
    app.hub().RegisterAgent(sdbus::ObjectPath("/test/silent"));

    const auto start = Clock::now();
    PendingPeer peer(shipd.port(), identity("unanswered"));
    REQUIRE(eventually(
        {&app}, [&] { return agent.asked(peer.ski()); }, scaled(10s)));
    const auto deadline = agent.ask_of(peer.ski()).details.at("Deadline").get<std::uint64_t>();
    CHECK(watch.peer(peer.ski()).PairingDeadline() == deadline);
    CHECK(deadline <= now_us() + 2'000'000);
    CHECK(watch.peer(peer.ski()).State() == "received-pairing-request");

    REQUIRE(peer.wait([](const PeerOutcome& o) { return o.ended; }, scaled(10s)));
    const auto took = Clock::now() - start;
    CHECK(peer.outcome().pending);
    CHECK(peer.outcome().aborted);
    CHECK(peer.outcome().close_code == 4452);
    CHECK(took >= 2s);
    REQUIRE(eventually(
        {&app, &watch}, [&] { return agent.cancel_of(peer.ski()).has_value(); }, scaled(5s)));
    CHECK_THAT(*agent.cancel_of(peer.ski()), Catch::Contains("expired"));
    REQUIRE(eventually(
        {&watch}, [&] { return state_signal(watch, peer.ski(), "error").has_value(); }, scaled(5s)));
    CHECK_THAT(state_signal(watch, peer.ski(), "error")->args[2],
               Catch::Contains("pairing request expired: no decision within 2 s"));
    CHECK(deadline_or_gone(watch, peer.ski()) == 0u);

    // PairingTimeout set over D-Bus applies to the next request.
    watch.hub().PairingTimeout(300u);
    CHECK(watch.hub().PairingTimeout() == 300u);
    PendingPeer next(shipd.port(), identity("unanswered-2"));
    REQUIRE(eventually(
        {&app}, [&] { return agent.asked(next.ski()); }, scaled(10s)));
    CHECK(agent.ask_of(next.ski()).details.at("Deadline").get<std::uint64_t>() > now_us() + 290'000'000);
}

TEST_CASE("blocked: a blocked SKI never reaches hello, one log line per burst of attempts; it stays blocked "
          "across a restart; unblocked it can pair",
          "[pairing][blocked]") {
    Daemon shipd;
    auto& watch = shipd.dbus();
    const auto offender = identity("blocked");
    watch.hub().Block(offender.ski);
    CHECK(watch.peer(offender.ski).Blocked());
    for (int attempt = 0; attempt < 5; ++attempt) {
        PendingPeer peer(shipd.port(), offender);
        REQUIRE(peer.wait([](const PeerOutcome& o) { return o.ended; }, scaled(10s)));
        INFO("attempt " << attempt);
        CHECK(peer.outcome().http_status == 0); // not even an HTTP answer: refused inside TLS
        CHECK_FALSE(peer.outcome().cmi);
    }
    eventually(
        {&watch}, [] { return false; }, 200ms);
    CHECK_FALSE(state_signal(watch, offender.ski, "received-pairing-request"));
    CHECK_FALSE(state_signal(watch, offender.ski, "initiated"));
    CHECK(count(shipd.log(), "refused blocked SKI " + offender.ski) == 1);
    CHECK(count(shipd.log(), "TLS handshake from") == 0); // no per-attempt handshake-failure lines either
    // Trust is refused while blocked.
    CHECK_THROWS_WITH(watch.hub().Trust(offender.ski), Catch::Contains("blocked"));

    shipd.restart();
    CHECK(shipd.dbus().peer(offender.ski).Blocked());
    {
        PendingPeer peer(shipd.port(), offender);
        REQUIRE(peer.wait([](const PeerOutcome& o) { return o.ended; }, scaled(10s)));
        CHECK(peer.outcome().http_status == 0);
    }
    // Unblocked through the writable property.
    shipd.dbus().peer(offender.ski).Blocked(false);
    PendingPeer peer(shipd.port(), offender);
    REQUIRE(peer.wait([](const PeerOutcome& o) { return o.pending; }, scaled(10s)));
}

TEST_CASE("agent: the agent process dying mid-request ends that request cleanly; the device's next request "
          "goes the signal and Trust way",
          "[pairing][agent]") {
    const char* shipctl = std::getenv("SHIPCTL_BINARY");
    REQUIRE(shipctl != nullptr);
    Daemon shipd;
    auto& watch = shipd.dbus();
    Child agent({shipctl, "--bus-address", shipd.address(), "agent"});
    REQUIRE(agent.wait_for("pairing agent registered", scaled(10s)));
    const auto device = identity("orphaned");
    auto peer = std::make_unique<PendingPeer>(shipd.port(), device);
    REQUIRE(agent.wait_for("Pairing request from SKI " + device.ski, scaled(10s)));
    agent.signal(SIGKILL);
    agent.wait_exit(scaled(5s));

    REQUIRE(peer->wait([](const PeerOutcome& o) { return o.ended; }, scaled(10s)));
    CHECK(peer->outcome().aborted);
    CHECK(peer->outcome().close_code == 4452);
    REQUIRE(eventually(
        {&watch}, [&] { return state_signal(watch, device.ski, "error").has_value(); }, scaled(5s)));
    CHECK_THAT(state_signal(watch, device.ski, "error")->args[2], Catch::Contains("left the bus"));
    CHECK(deadline_or_gone(watch, device.ski) == 0u);

    // No quiet period after an agent left: the device asks again and, with no agent, Trust decides.
    watch.clear();
    peer = std::make_unique<PendingPeer>(shipd.port(), device);
    REQUIRE(eventually(
        {&watch}, [&] { return state_signal(watch, device.ski, "received-pairing-request").has_value(); },
        scaled(10s)));
    watch.hub().Trust(device.ski);
    REQUIRE(peer->wait([](const PeerOutcome& o) { return o.completed; }, scaled(10s)));
}

TEST_CASE("agent: two apps each register an agent; one is asked, the other takes over when the first leaves",
          "[pairing][agent]") {
    Daemon shipd;
    auto first_app = std::make_unique<Client>(shipd.address());
    Client second_app(shipd.address());
    auto first = std::make_unique<TestAgent>(first_app->connection(), "/app/agent");
    TestAgent second(second_app.connection(), "/app/agent");
    first_app->hub().RegisterAgent(sdbus::ObjectPath("/app/agent"));
    second_app.hub().RegisterAgent(sdbus::ObjectPath("/app/agent")); // waits in line
    // One agent per app.
    CHECK_THROWS_WITH(second_app.hub().RegisterAgent(sdbus::ObjectPath("/app/other")),
                      Catch::Contains("registered already"));

    PendingPeer one(shipd.port(), identity("two-apps-1"));
    REQUIRE(eventually(
        {first_app.get(), &second_app}, [&] { return first->asked(one.ski()); }, scaled(10s)));
    eventually(
        {first_app.get(), &second_app}, [] { return false; }, 200ms);
    CHECK_FALSE(second.asked(one.ski()));

    // The first app leaves the bus (its connection closes) without unregistering.
    first.reset();
    first_app.reset();
    REQUIRE(one.wait([](const PeerOutcome& o) { return o.ended; }, scaled(10s)));
    CHECK(one.outcome().aborted); // its request went with the agent that was asked

    PendingPeer two(shipd.port(), identity("two-apps-2"));
    REQUIRE(eventually(
        {&second_app}, [&] { return second.asked(two.ski()); }, scaled(10s)));
    second.answer(two.ski(), true);
    REQUIRE(two.wait([](const PeerOutcome& o) { return o.completed; }, scaled(10s)));

    // UnregisterAgent: the second stops being asked; without an agent the signal flow stays.
    second_app.hub().UnregisterAgent(sdbus::ObjectPath("/app/agent"));
    auto& watch = shipd.dbus();
    PendingPeer three(shipd.port(), identity("two-apps-3"));
    REQUIRE(eventually(
        {&watch, &second_app},
        [&] { return state_signal(watch, three.ski(), "received-pairing-request").has_value(); },
        scaled(10s)));
    CHECK_FALSE(second.asked(three.ski()));
    watch.hub().CancelPairing(three.ski());
    REQUIRE(three.wait([](const PeerOutcome& o) { return o.aborted; }, scaled(10s)));
}

TEST_CASE("who is asking: an inbound peer's Host and Port are its address from the first byte", "[pairing]") {
    Daemon shipd;
    auto& watch = shipd.dbus();
    PendingPeer peer(shipd.port(), identity("inbound"));
    REQUIRE(peer.wait([](const PeerOutcome& o) { return o.pending; }, scaled(10s)));
    CHECK(watch.peer(peer.ski()).Host() == "127.0.0.1");
    CHECK(watch.peer(peer.ski()).Port() == peer.local_port());
    CHECK(watch.peer(peer.ski()).PairingDeadline() > now_us());
}

TEST_CASE("AutoAccept on approves what is pending; the agent is told", "[pairing][agent]") {
    Daemon shipd;
    Client app(shipd.address());
    TestAgent agent(app.connection(), "/test/agent");
    app.hub().RegisterAgent(sdbus::ObjectPath("/test/agent"));
    PendingPeer peer(shipd.port(), identity("auto"));
    REQUIRE(eventually(
        {&app}, [&] { return agent.asked(peer.ski()); }, scaled(10s)));
    shipd.dbus().hub().AutoAccept(true);
    REQUIRE(peer.wait([](const PeerOutcome& o) { return o.completed; }, scaled(10s)));
    REQUIRE(eventually(
        {&app}, [&] { return agent.cancel_of(peer.ski()).has_value(); }, scaled(5s)));
    CHECK(*agent.cancel_of(peer.ski()) == "approved by AutoAccept");
}

TEST_CASE("budget: untrusted connections have their own budget; when it is full the oldest gives way",
          "[pairing][budget]") {
    Daemon shipd(R"({"max_pending": 16, "max_pending_per_address": 3})");
    auto& watch = shipd.dbus();
    std::vector<std::unique_ptr<PendingPeer>> peers;
    for (int i = 0; i < 5; ++i) {
        peers.push_back(std::make_unique<PendingPeer>(shipd.port(), identity("budget-" + std::to_string(i))));
        REQUIRE(peers.back()->wait([](const PeerOutcome& o) { return o.pending; }, scaled(10s)));
    }
    // Five from 127.0.0.1 with a share of three: the first two gave way, in order.
    for (int i = 0; i < 2; ++i)
        REQUIRE(peers[i]->wait([](const PeerOutcome& o) { return o.aborted; }, scaled(5s)));
    for (int i = 2; i < 5; ++i)
        CHECK_FALSE(peers[i]->outcome().aborted);
    REQUIRE(eventually(
        {&watch}, [&] { return state_signal(watch, peers[0]->ski(), "error").has_value(); }, scaled(5s)));
    CHECK_THAT(state_signal(watch, peers[0]->ski(), "error")->args[2],
               Catch::Contains("dropped for a newer one"));
}

TEST_CASE(
    "budget: with 64 untrusted peers holding hello pending (granting every prolongation), a trusted peer "
    "still completes its handshake at once, every time",
    "[pairing][budget]") {
    constexpr int untrusted = 64, rounds = 5;
    // The default max_handshakes (8) and max_connections (32): 64 untrusted would have filled both.
    Daemon shipd(R"({"max_pending": 64, "max_pending_per_address": 64})");
    auto& watch = shipd.dbus();
    const auto trusted = identity("trusted");
    watch.hub().Trust(trusted.ski);

    std::vector<std::unique_ptr<PendingPeer>> peers;
    for (int i = 0; i < untrusted; ++i)
        peers.push_back(std::make_unique<PendingPeer>(shipd.port(), identity("flood-" + std::to_string(i))));
    for (auto& p : peers)
        REQUIRE(p->wait([](const PeerOutcome& o) { return o.prolongations >= 1 || o.ended; }, scaled(30s)));
    for (auto& p : peers)
        REQUIRE_FALSE(p->outcome().ended);

    for (int round = 1; round <= rounds; ++round) {
        // Each round after every untrusted peer was granted one more prolongation: the flood is alive.
        for (auto& p : peers)
            REQUIRE(p->wait([&](const PeerOutcome& o) { return o.prolongations >= round || o.ended; },
                            scaled(10s)));
        std::string why;
        const auto took = complete_handshake(shipd.port(), trusted, scaled(5s), why);
        INFO("round " << round << ": " << why);
        REQUIRE(took);
        CHECK(*took < scaled(1000ms));
        // It hung up; shipd has seen that before the next round (no double connection in the way).
        REQUIRE(eventually(
            {&watch},
            [&] {
                int n = 0;
                for (const auto& s : watch.signals())
                    if (s.name == "PeerDisconnected" && s.args[0] == trusted.ski) ++n;
                return n == round;
            },
            scaled(10s)));
    }
    // The flood held on throughout, each one granted prolongations all along.
    int pending = 0;
    for (auto& p : peers) {
        const auto o = p->outcome();
        CHECK_FALSE(o.ended);
        CHECK(o.prolongations >= rounds);
        pending += o.pending && !o.ended ? 1 : 0;
    }
    CHECK(pending == untrusted);
    int listed = 0;
    for (const auto& p : watch.hub().ListPeers())
        listed += p.get<2>() == "received-pairing-request" ? 1 : 0;
    CHECK(listed == untrusted);
}

} // namespace ship::test::pairing

namespace ship::test::pairing {

TEST_CASE("shipctl: pending lists a waiting request with its time left, info shows a peer, block and unblock",
          "[pairing][shipctl]") {
    const char* shipctl = std::getenv("SHIPCTL_BINARY");
    REQUIRE(shipctl != nullptr);
    Daemon shipd;
    auto ctl = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {shipctl, "--bus-address", shipd.address()});
        return run(args);
    };
    auto r = ctl({"pending"});
    CHECK(r.status == 0);
    CHECK(r.out == "no pairing requests waiting\n");
    PendingPeer peer(shipd.port(), identity("shipctl-pending"));
    REQUIRE(peer.wait([](const PeerOutcome& o) { return o.pending; }, scaled(10s)));
    r = ctl({"pending"});
    INFO(r.out << r.err);
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains(peer.ski()) &&
                          Catch::Contains("127.0.0.1:" + std::to_string(peer.local_port())) &&
                          Catch::Contains(" s"));
    r = ctl({"pending", "--json"});
    CHECK_THAT(r.out, Catch::StartsWith("[{\"ski\":\"" + peer.ski() + "\""));
    r = ctl({"info", peer.ski().substr(0, 10)});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("\tState: received-pairing-request") &&
                          Catch::Contains("\tBlocked: no") && Catch::Contains("\tPairingDeadline: "));
    r = ctl({"block", peer.ski()});
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::StartsWith("blocked " + peer.ski()));
    REQUIRE(peer.wait([](const PeerOutcome& o) { return o.aborted; }, scaled(10s))); // its request ended
    CHECK_THAT(ctl({"info", peer.ski()}).out, Catch::Contains("\tBlocked: yes"));
    CHECK(ctl({"unblock", peer.ski()}).status == 0);
    CHECK_THAT(ctl({"info", peer.ski()}).out, Catch::Contains("\tBlocked: no"));
    r = ctl({"block", "not-a-ski"});
    CHECK(r.status == 2);
}

TEST_CASE("the example energy manager as pairing agent: approves the device it was told, denies another",
          "[pairing][example]") {
    const char* example = std::getenv("SHIPD_EM_EXAMPLE");
    REQUIRE(example != nullptr);
    Daemon shipd;
    const auto wanted = identity("example-wanted");
    Child app({example, "--bus-address", shipd.address(), "--agent", "--ski", wanted.ski, "--pair-only",
               "--timeout", "30"});
    REQUIRE(app.wait_for("registered as shipd's pairing agent", scaled(10s)));
    PendingPeer stranger(shipd.port(), identity("example-stranger"));
    REQUIRE(stranger.wait([](const PeerOutcome& o) { return o.aborted; }, scaled(10s)));
    PendingPeer device(shipd.port(), wanted);
    REQUIRE(device.wait([](const PeerOutcome& o) { return o.completed; }, scaled(10s)));
    INFO(app.output());
    REQUIRE(app.wait_exit(scaled(10s)) == 0);
    CHECK_THAT(app.output(), Catch::Contains("agent: denying pairing request from " + stranger.ski()) &&
                                 Catch::Contains("agent: approving pairing request from " + wanted.ski) &&
                                 Catch::Contains("paired with " + wanted.ski + " and connected"));
}

} // namespace ship::test::pairing
