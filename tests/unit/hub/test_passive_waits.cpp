#include <catch2/catch.hpp>

#include <stop_token>
#include <vector>

#include "hub/passive_waits.hpp"
#include "manual_timers.hpp"
#include "mini_hub.hpp"

using namespace ship::hub;
using namespace ship::hub::test;
using namespace std::chrono_literals;

TEST_CASE("passive waits: a held connection is handed back once after 3 s", "[passive]") {
    ManualTimers timers;
    std::stop_source stop;
    PassiveWaits<int> waits(timers, stop.get_token());
    std::vector<int> over;
    waits.hold(small_ski, Direction::incoming, 7, [&](auto held) { over.push_back(held.item); });
    timers.advance(2999ms);
    CHECK(over.empty());
    timers.advance(1ms);
    CHECK(over == std::vector<int>{7});
    CHECK(waits.size() == 0);
    CHECK(timers.pending() == 0);
    timers.advance(10s);
    CHECK(over.size() == 1);
}

TEST_CASE("passive waits: taken ones never come back; take_ski is oldest first", "[passive]") {
    ManualTimers timers;
    std::stop_source stop;
    PassiveWaits<int> waits(timers, stop.get_token());
    int fired = 0;
    auto count = [&](auto) { ++fired; };
    const auto a = waits.hold(small_ski, Direction::incoming, 1, count);
    waits.hold(large_ski, Direction::incoming, 2, count);
    waits.hold(small_ski, Direction::outgoing, 3, count);
    REQUIRE(waits.take(a)->item == 1);
    CHECK_FALSE(waits.take(a));
    auto mine = waits.take_ski(small_ski);
    REQUIRE(mine.size() == 1);
    CHECK(mine[0].item == 3);
    CHECK(mine[0].direction == Direction::outgoing);
    CHECK(waits.size() == 1);
    CHECK(timers.pending() == 1);
    timers.advance(3s);
    CHECK(fired == 1);
}

TEST_CASE("passive waits: nothing is handed back after stop", "[passive][bug-class-6]") {
    ManualTimers timers;
    std::stop_source stop;
    auto waits = std::make_unique<PassiveWaits<int>>(timers, stop.get_token());
    int fired = 0;
    waits->hold(small_ski, Direction::incoming, 1, [&](auto) { ++fired; });
    stop.request_stop();
    timers.ignore_cancel(true);
    SECTION("waits kept") {}
    SECTION("waits destroyed") {
        waits.reset();
    }
    timers.fire_all_now();
    CHECK(fired == 0);
}

namespace {

// 100 connections from the larger-SKI peer, 10 ms apart; we hold the smaller SKI under the spec rule.
struct PassiveScenario {
    ManualTimers timers;
    SeededRandom random{3};
    std::stop_source stop;
    MiniHub hub{small_ski, DoubleConnectionRule::spec, timers, random, stop.get_token()};
    std::vector<MiniHub::TransportPtr> arrivals;

    PassiveScenario() {
        hub.on_close_started = [this](const MiniHub::TransportPtr& t) {
            timers.schedule(1ms, [this, t] { hub.transport_closed(t); });
        };
    }
    void arrive(int n, bool peer_closes_older) {
        for (int i = 0; i < n; ++i) {
            auto t = hub.make_transport(large_ski, Direction::incoming);
            arrivals.push_back(t);
            REQUIRE(hub.verify_incoming(t));
            hub.upgraded(t);
            if (peer_closes_older) {
                // The larger SKI keeps the most recent and closes the rest (SHIP 12.2.2).
                for (auto& older : arrivals)
                    if (older != t && older->open)
                        timers.schedule(5ms, [this, older] { hub.transport_closed(older); });
            }
            timers.advance(10ms);
        }
    }
};

} // namespace

TEST_CASE("double connection, smaller SKI: passive while the larger SKI settles it", "[passive][registry]") {
    PassiveScenario s;
    s.arrive(100, true);
    s.timers.advance(100ms);
    auto owner = std::dynamic_pointer_cast<FakeConnection>(s.hub.registry.find(large_ski));
    REQUIRE(owner);
    CHECK(owner->serial == s.arrivals.back()->id); // the most recent
    CHECK(s.hub.registry.size() == 1);
    CHECK(s.hub.waits.size() == 0);
    CHECK(s.timers.elapsed() < 3s); // settled without our 3 s wait
    for (auto& t : s.arrivals) {
        CHECK(t->unbuilt_closes == 0); // we closed nothing ourselves: the peer did
        if (t->conn) CHECK(t->conn->closes == 0);
    }
    s.hub.data_exchange(s.arrivals.back());
    CHECK(s.hub.connected_events == 1);
    CHECK(s.hub.violations == 0);
}

TEST_CASE("double connection, smaller SKI: acts itself when both still exist after 3 s",
          "[passive][registry]") {
    PassiveScenario s;
    s.arrive(100, false);
    CHECK(s.hub.waits.size() == 99);
    CHECK(s.hub.registry.find(large_ski)->direction() == Direction::incoming);
    s.timers.advance(3s);
    s.timers.advance(10ms); // the closes' transport ends
    auto owner = std::dynamic_pointer_cast<FakeConnection>(s.hub.registry.find(large_ski));
    REQUIRE(owner);
    CHECK(owner->serial == s.arrivals.back()->id);
    CHECK(s.hub.registry.size() == 1);
    CHECK(s.hub.waits.size() == 0);
    for (auto& t : s.arrivals) {
        REQUIRE(t->conn); // each was built in turn, as the most recent at its wait's end
        CHECK(t->conn->closes == (t == s.arrivals.back() ? 0 : 1));
    }
    s.hub.data_exchange(s.arrivals.back());
    CHECK(s.hub.connected_events == 1);
    CHECK(s.hub.violations == 0);
}
