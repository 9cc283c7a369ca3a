#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <stop_token>
#include <vector>

#include "fake_connection.hpp"
#include "hub/registry.hpp"
#include "ship/connection.hpp"

using namespace ship::hub;
using namespace ship::hub::test;

namespace {

constexpr auto out = Direction::outgoing;
constexpr auto in = Direction::incoming;

// Builds a fresh fake connection and counts how often a build ran.
struct Builder {
    int builds = 0;
    std::shared_ptr<FakeConnection> last;
    Registry::Build operator()(const std::string& ski, Direction d, int serial = 0) {
        return [this, ski, d, serial] {
            ++builds;
            last = fake(ski, d, serial);
            return last;
        };
    }
};

} // namespace

namespace {
// What a TLS verify step would ask: false if a connection in `direction` would lose at once.
bool would_accept(const Registry& registry, const std::string& ski, Direction direction) {
    return registry.decide(ski, direction) != Decision::keep_existing;
}
} // namespace

TEST_CASE("registry: swap into an empty slot builds and registers", "[registry]") {
    Registry registry(large_ski, DoubleConnectionRule::spec);
    Builder build;
    auto r = registry.swap(small_ski, in, build(small_ski, in));
    CHECK(r.decision == Decision::keep_new);
    CHECK(build.builds == 1);
    CHECK(r.kept == build.last);
    CHECK(r.evicted == nullptr);
    CHECK(registry.is_connected(small_ski));
    CHECK(registry.find(small_ski) == build.last);
    CHECK(registry.size() == 1);
}

TEST_CASE("registry: a losing new connection is never built", "[registry]") {
    Registry registry(large_ski, DoubleConnectionRule::legacy);
    Builder build;
    auto first = registry.swap(small_ski, out, build(small_ski, out));
    REQUIRE(first.decision == Decision::keep_new);
    CHECK_FALSE(would_accept(registry, small_ski, in)); // refused before the upgrade
    auto second = registry.swap(small_ski, in, build(small_ski, in));
    CHECK(second.decision == Decision::keep_existing);
    CHECK(build.builds == 1);
    CHECK(second.kept == first.kept);
    CHECK(second.evicted == nullptr);
}

TEST_CASE("bug class 2: decide and register in one step, 100 interleaved connections converge",
          "[registry][bug-class-2]") {
    // Each of 100 connections to one SKI goes through: TLS verify (would_accept), upgrade (swap), handshake
    // complete (confirm_connected); an evicted or refused one later reports its transport closed
    // (remove_if_matches). Steps of different connections are interleaved at random on the one strand.
    struct Case {
        DoubleConnectionRule rule;
        bool local_is_larger;
    };
    for (Case c : {Case{DoubleConnectionRule::spec, true}, Case{DoubleConnectionRule::legacy, true},
                   Case{DoubleConnectionRule::legacy, false}}) {
        for (unsigned seed = 1; seed <= 20; ++seed) {
            INFO("rule " << to_string(c.rule) << ", local " << (c.local_is_larger ? "larger" : "smaller")
                         << ", seed " << seed);
            const std::string& local = c.local_is_larger ? large_ski : small_ski;
            const std::string& peer = c.local_is_larger ? small_ski : large_ski;
            Registry registry(local, c.rule);
            std::mt19937 rng(seed);

            enum Step { verify, upgrade, complete, closed, done };
            struct Conn {
                Direction direction;
                Step step = verify;
                std::shared_ptr<FakeConnection> built;
            };
            std::vector<Conn> conns;
            for (int i = 0; i < 100; ++i)
                conns.push_back({rng() % 2 ? out : in, verify, nullptr});

            int connected_events = 0, disconnected_events = 0;
            bool connected = false;
            auto on_connected = [&] {
                REQUIRE_FALSE(connected);
                connected = true;
                ++connected_events;
            };
            auto on_disconnected = [&] {
                REQUIRE(connected);
                connected = false;
                ++disconnected_events;
            };
            std::vector<int> swap_order; // serials in the order their swap kept them

            std::vector<int> active(conns.size());
            for (std::size_t i = 0; i < conns.size(); ++i)
                active[i] = static_cast<int>(i);
            while (!active.empty()) {
                const std::size_t pick = rng() % active.size();
                const int i = active[pick];
                Conn& conn = conns[static_cast<std::size_t>(i)];
                switch (conn.step) {
                case verify:
                    conn.step = would_accept(registry, peer, conn.direction) ? upgrade : done;
                    break;
                case upgrade: {
                    auto r = registry.swap(peer, conn.direction, [&] {
                        conn.built = fake(peer, conn.direction, i);
                        return conn.built;
                    });
                    if (r.lost_connected) on_disconnected();
                    if (r.evicted) close_as_double_connection(*r.evicted);
                    if (r.decision == Decision::keep_new) {
                        swap_order.push_back(i);
                        conn.step = complete;
                    } else {
                        conn.step = done; // closed unbuilt
                    }
                    break;
                }
                case complete:
                    if (conn.built->alive()) {
                        conn.built->data_exchange = true;
                        if (registry.confirm_connected(peer, *conn.built)) on_connected();
                    }
                    conn.step = conn.built->alive() ? done : closed;
                    break;
                case closed: {
                    auto removal = registry.remove_if_matches(peer, *conn.built);
                    CHECK_FALSE(removal.owned); // every closed one here was replaced
                    conn.step = done;
                    break;
                }
                case done:
                    break;
                }
                if (conn.step == done) active.erase(active.begin() + static_cast<std::ptrdiff_t>(pick));
            }

            // Exactly one owner, alive, the rule's winner, with exactly one standing confirmation.
            REQUIRE(registry.size() == 1);
            auto owner = std::dynamic_pointer_cast<FakeConnection>(registry.find(peer));
            REQUIRE(owner);
            CHECK(owner->closes == 0);
            CHECK(registry.is_confirmed(peer));
            CHECK(connected);
            CHECK(connected_events == disconnected_events + 1);

            int expected = -1;
            if (c.rule == DoubleConnectionRule::spec) {
                expected = swap_order.back(); // the most recent
            } else {
                // The last one the larger SKI initiated, else the first one registered.
                const Direction larger_dials = c.local_is_larger ? out : in;
                for (int serial : swap_order)
                    if (conns[static_cast<std::size_t>(serial)].direction == larger_dials) expected = serial;
                if (expected < 0) expected = swap_order.front();
            }
            CHECK(owner->serial == expected);

            // Every other connection that was built was closed exactly once.
            for (const Conn& conn : conns)
                if (conn.built && conn.built != owner) CHECK(conn.built->closes == 1);
        }
    }
}

TEST_CASE("bug class 3: a replaced connection's removal returns false", "[registry][bug-class-3]") {
    Registry registry(large_ski, DoubleConnectionRule::spec);
    Builder build;
    registry.swap(small_ski, in, build(small_ski, in));
    auto first = build.last;
    REQUIRE(registry.confirm_connected(small_ski, *first));

    auto r = registry.swap(small_ski, out, build(small_ski, out));
    auto second = build.last;
    REQUIRE(r.evicted == first);
    CHECK(r.lost_connected); // PeerDisconnected belongs to the swap, not to the old connection's end
    close_as_double_connection(*first);

    auto removal = registry.remove_if_matches(small_ski, *first);
    CHECK_FALSE(removal.owned);
    CHECK_FALSE(removal.was_connected);
    CHECK(registry.find(small_ski) == second);

    CHECK_FALSE(registry.confirm_connected(small_ski, *first)); // a replaced one is never confirmed
    REQUIRE(registry.confirm_connected(small_ski, *second));
    auto last = registry.remove_if_matches(small_ski, *second);
    CHECK(last.owned);
    CHECK(last.was_connected);
    CHECK(registry.size() == 0);
    CHECK_FALSE(registry.remove_if_matches(small_ski, *second).owned); // only once
}

TEST_CASE("bug class 9: an evicted connection is closed exactly once", "[registry][bug-class-9]") {
    Registry registry(large_ski, DoubleConnectionRule::spec);
    Builder build;
    registry.swap(small_ski, out, build(small_ski, out));
    auto first = build.last;
    first->data_exchange = true;

    auto r = registry.swap(small_ski, in, build(small_ski, in));
    REQUIRE(r.evicted == first);
    CHECK(close_as_double_connection(*r.evicted));
    // Everyone else who might try: the peer's close arriving, a second owner, shutdown.
    CHECK_FALSE(first->begin_close());
    CHECK_FALSE(close_as_double_connection(*first));
    CHECK_FALSE(first->close(ship::close_code_ship, "again"));
    for (auto& released : registry.take_all())
        released.connection->close(ship::close_code_ship, "shutdown");
    CHECK(first->closes == 1);
    CHECK(first->close_code == ship::close_code_ship);
    CHECK(first->close_reason == double_connection_reason);
    CHECK(build.last->closes == 1); // the shutdown close of the kept one
}

TEST_CASE("bug class 12: a closing entry never blocks a reconnect", "[registry][bug-class-12]") {
    for (auto rule : {DoubleConnectionRule::spec, DoubleConnectionRule::legacy})
        for (bool local_is_larger : {true, false})
            for (auto old_dir : {out, in})
                for (auto new_dir : {out, in}) {
                    INFO(to_string(rule) << (local_is_larger ? " larger " : " smaller ") << to_string(old_dir)
                                         << " then " << to_string(new_dir));
                    const std::string& local = local_is_larger ? large_ski : small_ski;
                    const std::string& peer = local_is_larger ? small_ski : large_ski;
                    Registry registry(local, rule);
                    Builder build;
                    registry.swap(peer, old_dir, build(peer, old_dir));
                    auto old = build.last;
                    REQUIRE(registry.confirm_connected(peer, *old));
                    REQUIRE(old->begin_close()); // the peer hung up; remove_if_matches still to come

                    CHECK_FALSE(registry.is_connected(peer));
                    CHECK_FALSE(registry.is_confirmed(peer));
                    CHECK(registry.find(peer) == nullptr);
                    CHECK(registry.contains(peer));
                    CHECK(would_accept(registry, peer, new_dir));
                    auto r = registry.swap(peer, new_dir, build(peer, new_dir));
                    CHECK(r.decision == Decision::keep_new);
                    CHECK(r.kept == build.last);
                    CHECK(r.evicted == nullptr); // its close already has an owner
                    CHECK(r.lost_connected);
                    CHECK(old->closes == 0);
                    CHECK_FALSE(registry.remove_if_matches(peer, *old).owned);
                    CHECK(registry.is_connected(peer));
                }
}

TEST_CASE("registry: nothing is registered after stop", "[registry][bug-class-7]") {
    std::stop_source stop;
    Registry registry(large_ski, DoubleConnectionRule::spec, stop.get_token());
    Builder build;
    stop.request_stop();
    auto r = registry.swap(small_ski, out, build(small_ski, out));
    CHECK(r.stopping);
    CHECK(r.decision == Decision::keep_existing);
    CHECK(build.builds == 0);
    CHECK(registry.size() == 0);
}

TEST_CASE("registry: take_all empties it and reports which were connected", "[registry]") {
    Registry registry(large_ski, DoubleConnectionRule::spec);
    const std::string other = "ffffffffffffffffffffffffffffffffffffff00";
    Builder build;
    registry.swap(small_ski, out, build(small_ski, out));
    REQUIRE(registry.confirm_connected(small_ski, *build.last));
    registry.swap(other, in, build(other, in));
    auto all = registry.take_all();
    REQUIRE(all.size() == 2);
    std::map<std::string, bool> was;
    for (auto& r : all)
        was[r.connection->ski()] = r.was_connected;
    CHECK(was[small_ski]);
    CHECK_FALSE(was[other]);
    CHECK(registry.size() == 0);
    CHECK_FALSE(registry.remove_if_matches(other, *build.last).owned);
}

TEST_CASE("registry: a build that returns nothing registers nothing", "[registry]") {
    Registry registry(large_ski, DoubleConnectionRule::spec);
    Builder build;
    registry.swap(small_ski, out, build(small_ski, out));
    auto r = registry.swap(small_ski, in, [] { return Registry::Handle{}; });
    CHECK(r.kept == build.last);
    CHECK(r.evicted == nullptr);
    CHECK(build.last->alive());
}
