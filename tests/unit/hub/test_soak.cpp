// The real Hub, seeded: thousands of schedules of peers dialling in, our dials (some refused), double
// connections, peers closing or vanishing, untrust/trust, Connect and Disconnect, and a stop at a random
// point, on one virtual clock with in-memory links (fake_world.hpp) and real SHIP on both ends.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <random>

#include <spdlog/spdlog.h>

#include "fake_world.hpp"
#include "hub/hub.hpp"

using namespace ship::hub;
using namespace ship::hub::test;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

// Under the sanitizers each schedule costs several times more; the same seeds, fewer of them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr unsigned default_schedules = 1500;
#else
constexpr unsigned default_schedules = 10000;
#endif

unsigned schedules() {
    if (const char* n = std::getenv("SHIPD_SOAK_SCHEDULES")) return static_cast<unsigned>(std::stoul(n));
    return default_schedules;
}

// The state directory on tmpfs when there is one: the trust store fsyncs, and a disk would make the
// schedules wait for it.
struct StateDir {
    StateDir() {
        const std::filesystem::path base =
            std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
        std::string name = (base / "shipd-soak-XXXXXX").string();
        if (!mkdtemp(name.data())) throw std::runtime_error("mkdtemp failed");
        path = name;
    }
    ~StateDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path, ignored);
    }
    std::filesystem::path path;
};

// The ownership events as an application sees them: per SKI connected and disconnected alternate, starting
// with connected, and nothing at all arrives once the hub has finished its stop.
struct Recorder final : HubEvents {
    void peer_connected(const std::string& ski) override {
        after_finish("PeerConnected");
        if (connected[ski]) violations.push_back("PeerConnected twice in a row for " + ski.substr(0, 8));
        connected[ski] = true;
        ++connects;
    }
    void peer_disconnected(const std::string& ski, const std::string&) override {
        after_finish("PeerDisconnected");
        if (!connected[ski])
            violations.push_back("PeerDisconnected without PeerConnected for " + ski.substr(0, 8));
        connected[ski] = false;
    }
    void peer_state_changed(const std::string&, PeerState, const std::string&) override {
        after_finish("state");
    }
    void peer_ship_id_changed(const std::string&, const std::string&) override { after_finish("SHIP ID"); }
    void discovered_changed() override { after_finish("discovered"); }
    void data_received(const std::string&, const std::string&) override { after_finish("data"); }
    void peer_added(const PeerInfo&) override { after_finish("peer added"); }
    void peer_changed(const PeerInfo&) override { after_finish("peer changed"); }
    void peer_removed(const std::string&) override { after_finish("peer removed"); }

    void after_finish(const char* what) {
        if (finished) violations.push_back(std::string(what) + " after the hub finished its stop");
    }
    std::map<std::string, bool> connected;
    std::vector<std::string> violations;
    bool finished = false;
    int connects = 0;
};

const std::string local_ski = "8888888888888888888888888888888888888850";

std::string peer_ski(int n) {
    std::string s(40, '8');
    const std::string digits = std::to_string(n * 7); // some sort below our SKI, some above
    s.replace(s.size() - digits.size(), digits.size(), digits);
    return s;
}

struct Outcome {
    std::vector<std::string> violations;
    int connects = 0, double_closes = 0, peer_rule_closes = 0;
};

Outcome run_schedule(std::uint64_t seed, DoubleConnectionRule rule) {
    Outcome out;
    std::mt19937_64 rng(seed);
    auto between = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    auto fail = [&](const std::string& what) { out.violations.push_back(what); };

    StateDir state;
    ManualTimers clock;
    FakeLoop loop(clock);
    FakeNetwork network(clock, loop.stop_token(), seed, {rule, local_ski, between(40, 90)});
    Recorder events;
    {
        HubConfig config;
        config.ship_id = "hub-soak";
        config.local_ski = local_ski;
        config.rule = rule;
        config.random_seed = seed;
        Hub hub(loop, network, config, TrustStore::load(state.path, [&loop](std::function<void()> fn) {
                    loop.post(std::move(fn));
                }));
        hub.set_events(&events);
        hub.start();

        std::vector<std::string> peers;
        const int n_peers = between(1, 4);
        for (int p = 0; p < n_peers; ++p) {
            peers.push_back(peer_ski(between(1, 12)));
            hub.trust(peers.back());
            hub.connect(peers.back(), "192.0.2.7", 4711);
        }
        // PeerConnected holds from confirm_connected until the slot is freed (remove_if_matches), also while
        // the connection closes: connected ⇒ a slot; a confirmed alive owner ⇒ connected.
        auto check_ownership = [&](int step) {
            for (const auto& ski : peers) {
                const bool app = events.connected[ski];
                if ((app && !hub.registry().contains(ski)) || (!app && hub.registry().is_confirmed(ski)))
                    fail("step " + std::to_string(step) + ": SKI " + ski.substr(0, 8) + " is " +
                         (app ? "" : "not ") + "connected for the application, the registry " +
                         (hub.registry().contains(ski) ? "has" : "has no") + " slot" +
                         (hub.registry().is_confirmed(ski) ? " (confirmed)" : ""));
                // A link both ends have used for seconds is the hub's one connection with that peer
                // (a zombie the registry forgot, or a second owner, would show here).
                const auto settled = network.settled_links(ski, 4s);
                if (settled > 1 || (settled == 1 && !app))
                    fail("step " + std::to_string(step) + ": SKI " + ski.substr(0, 8) + " has " +
                         std::to_string(settled) + " link(s) in data exchange for 4 s, and is " +
                         (app ? "" : "not ") + "connected for the application");
            }
        };

        const int steps = between(10, 60);
        const int stop_at = between(3, steps);
        for (int step = 0; step < steps; ++step) {
            if (step == stop_at) loop.request_stop();
            const std::string& ski = peers[static_cast<std::size_t>(between(0, n_peers - 1))];
            const int what = between(1, 100);
            if (what <= 35)
                network.peer_dials(ski);
            else if (what <= 50)
                network.peer_ends_one(ski, true);
            else if (what <= 58)
                network.peer_ends_one(ski, false);
            else if (what <= 64)
                hub.untrust(ski);
            else if (what <= 70)
                hub.trust(ski);
            else if (what <= 78)
                hub.connect(ski, "192.0.2.7", 4711);
            else if (what <= 82)
                hub.disconnect(ski, "soak");
            else if (what <= 88)
                hub.send_data(ski, R"({"datagram":{"header":{},"payload":{}}})");
            clock.advance(milliseconds(between(0, 600)));
            loop.run_posted();
            check_ownership(step);
        }
        loop.request_stop();
        for (int i = 0; i < 60 && !loop.finished; ++i) {
            clock.advance(1s);
            loop.run_posted();
        }
        check_ownership(steps);
        if (!loop.finished) fail("the hub did not finish its stop within 60 s");
        if (hub.registry().size() != 0) fail("registry not empty after stop");
        if (hub.live_connections() != 0) fail("connections left after stop");
        if (hub.held_links() != 0) fail("held links left after stop");
        if (hub.dials().in_flight() != 0) fail("dials in flight after stop");
        if (hub.pending_timers() != 0)
            fail(std::to_string(hub.pending_timers()) + " hub timers left after stop");
        for (const auto& [ski, connected] : events.connected)
            if (connected)
                fail("SKI " + ski.substr(0, 8) + " still connected for the application after stop");
        events.finished = true;
        clock.advance(60s);
    }
    clock.advance(60s); // the hub is gone: what the peers still do must not reach it
    for (int p = 1; p <= 12; ++p)
        if (network.ends_in_data_exchange(peer_ski(p)) != 0)
            fail("a peer still holds a link in data exchange after the hub went");
    out.connects = events.connects;
    out.double_closes = network.double_closes;
    out.peer_rule_closes = network.peer_rule_closes;
    for (auto& v : events.violations)
        out.violations.push_back(std::move(v));
    for (auto& v : network.violations)
        out.violations.push_back(std::move(v));
    return out;
}

} // namespace

// Mutations tried (2026-12-03) and caught: remove_if_matches freeing the slot for a connection that no longer
// owns it (seed 115), or never saying `owned` (seed 2); should_keep_new's legacy branch inverted (seed 6488).
// Not caught: should_keep_new's spec branch keeping the existing link (the hub then learns and follows the
// peer's decisions), confirm_connected ignoring the owner (only the owner reaches data exchange here).
TEST_CASE("soak: the real Hub keeps ownership consistent over seeded schedules", "[soak]") {
    const unsigned n = schedules();
    int connects = 0, double_closes = 0, peer_rule_closes = 0;
    for (unsigned i = 1; i <= n; ++i) {
        const auto rule = i % 2 ? DoubleConnectionRule::spec : DoubleConnectionRule::legacy;
        const auto outcome = run_schedule(i, rule);
        connects += outcome.connects;
        double_closes += outcome.double_closes;
        peer_rule_closes += outcome.peer_rule_closes;
        if (!outcome.violations.empty()) {
            std::string all;
            for (const auto& v : outcome.violations)
                all += "\n  " + v;
            FAIL("seed " << i << " (rule " << to_string(rule) << ", SHIPD_SOAK_SEED=" << i << "):" << all);
        }
    }
    // The schedules must exercise data exchange, not only refusals.
    CHECK(connects > static_cast<int>(n));
    WARN(connects << " connects, " << double_closes << " double-connection closes by the hub checked, "
                  << peer_rule_closes << " by the peers' rule");
}

TEST_CASE("soak: one seed again (SHIPD_SOAK_SEED)", "[soak][.seed]") {
    const char* seed = std::getenv("SHIPD_SOAK_SEED");
    if (!seed) return;
    const auto i = std::stoull(seed);
    spdlog::set_level(spdlog::level::debug); // the one schedule, told in full
    const auto outcome = run_schedule(i, i % 2 ? DoubleConnectionRule::spec : DoubleConnectionRule::legacy);
    for (const auto& v : outcome.violations)
        UNSCOPED_INFO(v);
    CHECK(outcome.violations.empty());
}
