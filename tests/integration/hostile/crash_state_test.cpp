// Crash-safe state (issue 8): shipd is killed with SIGKILL at random moments while a client changes trust as
// fast as D-Bus allows. trust.json must then hold the last acknowledged version or the one in flight, never
// a torn, empty or unparsable file, and the next shipd must start from exactly that.
#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <rapidjson/document.h>

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

// The trusted SKIs in trust.json; nullopt (with `why`) if the file is not a valid trust store. A missing
// file is the empty store, as shipd reads it.
std::optional<SkiSet> read_trust_file(const std::filesystem::path& path, std::string& why) {
    std::ifstream in(path);
    if (!in) return SkiSet{};
    std::stringstream text;
    text << in.rdbuf();
    const std::string s = text.str();
    if (s.empty()) {
        why = "trust.json is empty";
        return std::nullopt;
    }
    rapidjson::Document doc;
    doc.Parse(s.c_str(), s.size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("version") || !doc.HasMember("peers") ||
        !doc["peers"].IsArray()) {
        why = "trust.json is not a trust store:\n" + s;
        return std::nullopt;
    }
    SkiSet skis;
    for (const auto& peer : doc["peers"].GetArray()) {
        if (!peer.IsObject() || !peer.HasMember("ski") || !peer["ski"].IsString()) {
            why = "a peer entry without ski:\n" + s;
            return std::nullopt;
        }
        skis.insert(peer["ski"].GetString());
    }
    return skis;
}

std::string text_of(const SkiSet& set) {
    std::string out = "{";
    for (const auto& s : set)
        out += " " + s.substr(0, 8);
    return out + " }";
}

} // namespace

TEST_CASE("kill -9 during trust writes: trust.json is the acknowledged or the in-flight version, and loads",
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
    const auto trust_file = state / "trust.json";

    std::vector<std::string> pool;
    for (int i = 0; i < 24; ++i) {
        std::string ski;
        for (int j = 0; j < 40; ++j)
            ski.push_back("0123456789abcdef"[rng() % 16]);
        pool.push_back(ski);
    }

    SkiSet on_disk; // what the previous iteration left in trust.json
    long as_acknowledged = 0, as_in_flight = 0, changes = 0;
    for (long it = 0; it < iterations; ++it) {
        const auto delay = std::chrono::microseconds(rng() % 40'000);
        INFO("iteration " << it << ", kill after " << delay.count() << " µs (seed " << seed << ")");
        ShipdProcess shipd({"--state-dir", state.string(), "--port", "0", "--no-mdns", "--bus-address",
                            bus.address(), "--log-level", "warn"},
                           dir.path / "shipd.log");
        REQUIRE(shipd.wait_notify("READY=1", scaled(10s)));
        Client client(bus.address());

        // The restarted daemon loaded exactly what the file held.
        const SkiSet loaded = trusted_on_the_bus(client);
        INFO("file " << text_of(on_disk) << ", loaded " << text_of(loaded));
        REQUIRE(loaded == on_disk);

        SkiSet acknowledged = loaded;
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
            try {
                if (trust)
                    client.hub().Trust(ski);
                else
                    client.hub().Untrust(ski);
            } catch (const sdbus::Error&) {
                break; // shipd is gone: this change was in flight
            }
            acknowledged = std::move(next);
            in_flight.reset();
            ++changes;
        }
        killer.join();
        REQUIRE(shipd.wait_exit(scaled(5s)) == 128 + SIGKILL);

        std::string why;
        const auto file = read_trust_file(trust_file, why);
        INFO(why);
        REQUIRE(file);
        INFO("acknowledged " << text_of(acknowledged) << ", in flight "
                             << (in_flight ? text_of(*in_flight) : "none") << ", file " << text_of(*file));
        const bool is_acknowledged = *file == acknowledged;
        const bool is_in_flight = in_flight && *file == *in_flight;
        REQUIRE((is_acknowledged || is_in_flight));
        (is_acknowledged ? as_acknowledged : as_in_flight) += 1;
        std::cout << "[crash] " << it << ": kill after " << delay.count() << " us: file holds the "
                  << (is_acknowledged ? "acknowledged" : "in-flight") << " version, " << file->size()
                  << " trusted\n";
        on_disk = *file;
    }
    {
        // The last file is loaded too.
        ShipdProcess shipd({"--state-dir", state.string(), "--port", "0", "--no-mdns", "--bus-address",
                            bus.address(), "--log-level", "warn"},
                           dir.path / "shipd.log");
        REQUIRE(shipd.wait_notify("READY=1", scaled(10s)));
        Client client(bus.address());
        CHECK(trusted_on_the_bus(client) == on_disk);
    }

    std::size_t leftovers = 0;
    for (const auto& entry : std::filesystem::directory_iterator(state))
        if (entry.path().filename().string().rfind(".trust.json.tmp-", 0) == 0) ++leftovers;
    std::cout << "[crash] " << changes << " acknowledged trust changes; after the kill the file held the "
              << "acknowledged version " << as_acknowledged << " times, the in-flight one " << as_in_flight
              << " times; " << leftovers << " temporary files left behind by kills\n";
}
