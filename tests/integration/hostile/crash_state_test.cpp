// Crash-safe state (issue 8): shipd is killed with SIGKILL at random moments while a client changes trust as
// fast as D-Bus allows. The state on disk (trust.json snapshot + trust.journal) is judged by the only reader
// that matters, the next shipd: it must start (never a corrupt store) and its ListPeers must show the last
// acknowledged version or the one in flight, never anything else.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "attacked_daemon.hpp"

using namespace ship::test;
using namespace ship::test::hostile;
using SkiSet = std::set<std::string>;

namespace {

// The SKIs the running shipd reports trusted (ListPeers: ski, ship_id, state, trusted, connected).
SkiSet trusted_on_the_bus(Client& client) {
    SkiSet trusted;
    for (const auto& p : client.hub().ListPeers())
        if (p.get<3>()) trusted.insert(p.get<0>());
    return trusted;
}

long env_number(const char* name, long fallback) {
    const char* value = std::getenv(name);
    return value && *value ? std::atol(value) : fallback;
}

std::string text_of(const SkiSet& set) {
    std::string out = "{";
    for (const auto& s : set)
        out += " " + s.substr(0, 8);
    return out + " }";
}

// What the killed shipd may have left: the last acknowledged set, or the set of the one call in flight.
struct Expected {
    SkiSet acknowledged;
    std::optional<SkiSet> in_flight;
};

// Starts shipd on `state` and checks what it loaded against `expected`; counts which version it was.
struct Restart {
    std::unique_ptr<ShipdProcess> shipd;
    std::unique_ptr<Client> client;
    SkiSet loaded;
};

Restart restart_and_check(const std::filesystem::path& dir, const std::filesystem::path& state,
                          const PrivateBus& bus, const Expected& expected, long& as_acknowledged,
                          long& as_in_flight) {
    Restart r;
    r.shipd = std::make_unique<ShipdProcess>(std::vector<std::string>{"--state-dir", state.string(), "--port",
                                                                      "0", "--no-mdns", "--bus-address",
                                                                      bus.address(), "--log-level", "warn"},
                                             dir / "shipd.log");
    // A store that does not load (corrupt snapshot or journal) makes shipd exit instead of becoming ready.
    if (!r.shipd->wait_notify("READY=1", scaled(10s))) FAIL("shipd did not start:\n" << r.shipd->log());
    r.client = std::make_unique<Client>(bus.address());
    r.loaded = trusted_on_the_bus(*r.client);
    INFO("acknowledged " << text_of(expected.acknowledged) << ", in flight "
                         << (expected.in_flight ? text_of(*expected.in_flight) : "none") << ", loaded "
                         << text_of(r.loaded));
    const bool is_acknowledged = r.loaded == expected.acknowledged;
    const bool is_in_flight = expected.in_flight && r.loaded == *expected.in_flight;
    REQUIRE((is_acknowledged || is_in_flight));
    (is_acknowledged ? as_acknowledged : as_in_flight) += 1;
    return r;
}

} // namespace

TEST_CASE("kill -9 during trust writes: the next shipd loads the acknowledged or the in-flight version",
          "[hostile][crash]") {
    const long scale = time_scale();
    const long iterations = env_number("SHIPD_CRASH_ITERATIONS", 200 / scale);
    const auto seed = static_cast<std::uint64_t>(env_number("SHIPD_CRASH_SEED", 20261125));
    std::cout << "[crash] " << iterations << " iterations (SHIPD_CRASH_ITERATIONS; default 200"
              << (scale > 1 ? " / SHIPD_TEST_TIME_SCALE " + std::to_string(scale) : std::string())
              << "), seed " << seed << " (SHIPD_CRASH_SEED)\n";
    std::mt19937_64 rng(seed);

    TempDir dir;
    PrivateBus bus(dir.path);
    const auto state = dir.path / "state";

    std::vector<std::string> pool;
    for (int i = 0; i < 24; ++i) {
        std::string ski;
        for (int j = 0; j < 40; ++j)
            ski.push_back("0123456789abcdef"[rng() % 16]);
        pool.push_back(ski);
    }

    Expected expected; // an empty state dir at first
    long as_acknowledged = 0, as_in_flight = 0, changes = 0;
    std::chrono::steady_clock::duration acknowledging{};
    for (long it = 0; it < iterations; ++it) {
        const auto delay = std::chrono::microseconds(rng() % 40'000);
        INFO("iteration " << it << ", kill after " << delay.count() << " µs (seed " << seed << ")");
        // The restarted daemon loaded what the previous one acknowledged, or its change in flight.
        const long in_flight_before = as_in_flight;
        long first_ack = 0, first_in_flight = 0; // the first start follows no kill: not counted
        auto r = restart_and_check(dir.path, state, bus, expected, it > 0 ? as_acknowledged : first_ack,
                                   it > 0 ? as_in_flight : first_in_flight);
        if (it > 0)
            std::cout << "[crash] " << it - 1 << ": the next shipd loaded the "
                      << (as_in_flight > in_flight_before ? "in-flight" : "acknowledged") << " version, "
                      << r.loaded.size() << " trusted\n";
        ShipdProcess& shipd = *r.shipd;
        Client& client = *r.client;

        SkiSet acknowledged = r.loaded;
        std::optional<SkiSet> in_flight;
        // The random moment is the point of the test: this sleep chooses it, it synchronises nothing.
        std::thread killer([&shipd, delay] {
            std::this_thread::sleep_for(delay);
            shipd.signal(SIGKILL);
        });
        for (;;) {
            const std::string& ski = pool[rng() % pool.size()];
            SkiSet next = acknowledged;
            const bool trust = !next.erase(ski);
            if (trust) next.insert(ski);
            in_flight = next;
            const auto sent = std::chrono::steady_clock::now();
            try {
                if (trust)
                    client.hub().Trust(ski);
                else
                    client.hub().Untrust(ski);
            } catch (const sdbus::Error&) {
                break; // shipd is gone: this change was in flight
            }
            // The reply came only once the change was durable.
            acknowledging += std::chrono::steady_clock::now() - sent;
            acknowledged = std::move(next);
            in_flight.reset();
            ++changes;
        }
        killer.join();
        REQUIRE(shipd.wait_exit(scaled(5s)) == 128 + SIGKILL);
        expected = Expected{acknowledged, in_flight};
    }
    // The last kill is judged by one more start.
    const long in_flight_before = as_in_flight;
    const auto last = restart_and_check(dir.path, state, bus, expected, as_acknowledged, as_in_flight);
    std::cout << "[crash] " << iterations - 1 << ": the next shipd loaded the "
              << (as_in_flight > in_flight_before ? "in-flight" : "acknowledged") << " version, "
              << last.loaded.size() << " trusted\n";

    std::size_t leftovers = 0;
    for (const auto& entry : std::filesystem::directory_iterator(state))
        if (entry.path().filename().string().rfind(".trust.json.tmp-", 0) == 0) ++leftovers;
    const auto mean_ack_us =
        changes ? std::chrono::duration_cast<std::chrono::microseconds>(acknowledging).count() / changes : 0;
    std::cout << "[crash] " << changes << " acknowledged trust changes (mean time to the reply "
              << mean_ack_us << " us); the next shipd loaded the acknowledged version " << as_acknowledged
              << " times, the in-flight one " << as_in_flight << " times; " << leftovers
              << " temporary files left behind by kills; trust.json "
              << (std::filesystem::exists(state / "trust.json") ? "exists" : "was never written")
              << " (compactions)\n";
}
