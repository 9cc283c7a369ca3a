#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <stop_token>
#include <vector>

#include "fake_connection.hpp"
#include "hub/dial_scheduler.hpp"
#include "hub/registry.hpp"
#include "manual_timers.hpp"

using namespace ship::hub;
using namespace ship::hub::test;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

const std::string ski_a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const std::string ski_b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

std::string nth_ski(int n) {
    std::string s(40, '0');
    std::string digits = std::to_string(n);
    s.replace(s.size() - digits.size(), digits.size(), digits);
    return s;
}

// The hub around the scheduler, reduced to sets: who is trusted, connected, where they are; and a dialer
// that keeps the tickets of the dials in flight.
struct World {
    enum class Dialer { hold, fail_at_once, throw_at_once };

    explicit World(std::unique_ptr<RandomSource> r = std::make_unique<SeededRandom>(7))
        : random(std::move(r))
        , scheduler(std::make_unique<DialScheduler>(timers, *random, stop.get_token(), hooks())) {}

    DialScheduler::Hooks hooks() {
        return {
            [this](const std::string& ski) {
                ++hook_calls;
                return trusted.contains(ski) && !connected.contains(ski);
            },
            [this](const std::string& ski) -> std::optional<PeerAddress> {
                ++hook_calls;
                auto it = addresses.find(ski);
                if (it == addresses.end()) return std::nullopt;
                return it->second;
            },
            [this](const std::string& ski, const PeerAddress& address, DialTicket ticket) {
                ++hook_calls;
                dials.push_back({ski, timers.elapsed(), address});
                if (dialer == Dialer::throw_at_once) throw std::runtime_error("no route to host");
                if (dialer == Dialer::fail_at_once) return std::function<void()>{};
                REQUIRE_FALSE(tickets.contains(ski)); // at most one in flight per SKI
                tickets.emplace(ski, std::move(ticket));
                return std::function<void()>([this, ski] {
                    ++cancels;
                    if (drop_on_cancel) tickets.erase(ski);
                });
            },
        };
    }

    void trust(const std::string& ski) {
        trusted.insert(ski);
        addresses[ski] = PeerAddress{"192.0.2.1", 4711, "/ship/"};
    }
    // The dial in flight ends with an upgraded connection; returns what the ticket allows.
    bool complete(const std::string& ski) {
        auto node = tickets.extract(ski);
        REQUIRE(node);
        return node.mapped().connected();
    }
    void fail(const std::string& ski) { REQUIRE(tickets.erase(ski) == 1); }
    std::size_t dials_to(const std::string& ski) const {
        std::size_t n = 0;
        for (auto& d : dials)
            n += d.ski == ski;
        return n;
    }

    struct Dial {
        std::string ski;
        milliseconds at;
        PeerAddress address;
    };

    ManualTimers timers;
    std::unique_ptr<RandomSource> random;
    std::stop_source stop;
    std::set<std::string> trusted, connected;
    std::map<std::string, PeerAddress> addresses;
    Dialer dialer = Dialer::hold;
    bool drop_on_cancel = true;
    std::map<std::string, DialTicket> tickets;
    std::vector<Dial> dials;
    int cancels = 0;
    int hook_calls = 0;
    std::unique_ptr<DialScheduler> scheduler;
};

} // namespace

TEST_CASE("dial scheduler: a trusted peer with a known address is dialled within 3 s", "[dial]") {
    World w;
    w.trust(ski_a);
    w.scheduler->request(ski_a);
    w.timers.advance(3s);
    REQUIRE(w.dials.size() == 1);
    CHECK(w.dials[0].address == PeerAddress{"192.0.2.1", 4711, "/ship/"});
    CHECK(w.scheduler->is_dialling(ski_a));
    CHECK(w.scheduler->in_flight() == 1);
}

TEST_CASE("bug class 1: an attempt that ends early never blocks later reconnects", "[dial][bug-class-1]") {
    World w;
    w.trust(ski_a);

    SECTION("the dial fails at once") {
        w.dialer = World::Dialer::fail_at_once;
        w.scheduler->request(ski_a);
        w.timers.advance(3s);
        REQUIRE(w.dials.size() == 1);
    }
    SECTION("the dial throws") {
        w.dialer = World::Dialer::throw_at_once;
        w.scheduler->request(ski_a);
        w.timers.advance(3s);
        REQUIRE(w.dials.size() == 1);
    }
    SECTION("the dial fails later") {
        w.scheduler->request(ski_a);
        w.timers.advance(3s);
        w.fail(ski_a);
    }
    SECTION("the peer was untrusted when the timer fired") {
        w.trusted.clear();
        w.scheduler->request(ski_a);
        w.timers.advance(3s);
        REQUIRE(w.dials.empty());
        w.trust(ski_a);
        w.scheduler->request(ski_a);
    }
    SECTION("the peer was already connected when the timer fired") {
        w.connected.insert(ski_a);
        w.scheduler->request(ski_a);
        w.timers.advance(3s);
        REQUIRE(w.dials.empty());
        CHECK(w.scheduler->pending_timers() == 0);
        w.connected.clear(); // that connection ended: the hub asks again
        w.scheduler->request(ski_a);
    }
    SECTION("no address was known yet") {
        w.addresses.clear();
        w.scheduler->request(ski_a);
        w.timers.advance(3s);
        REQUIRE(w.dials.empty());
        w.trust(ski_a); // mDNS announced it
    }
    SECTION("the dial was cancelled (an incoming connection won)") {
        w.scheduler->request(ski_a);
        w.timers.advance(3s);
        REQUIRE(w.scheduler->cancel_dial(ski_a));
        CHECK(w.cancels == 1);
    }
    SECTION("the dial was cancelled but still produced a connection") {
        w.drop_on_cancel = false;
        w.scheduler->request(ski_a);
        w.timers.advance(3s);
        REQUIRE(w.scheduler->cancel_dial(ski_a));
        CHECK_FALSE(w.complete(ski_a)); // must not register
    }
    SECTION("the connection was refused after the upgrade") {
        w.scheduler->request(ski_a);
        w.timers.advance(3s);
        REQUIRE(w.complete(ski_a));
        w.scheduler->request(ski_a); // its end: remove_if_matches owned → request
    }

    CHECK_FALSE(w.scheduler->is_dialling(ski_a));
    CHECK(w.scheduler->in_flight() == 0);
    const std::size_t before = w.dials.size();
    w.dialer = World::Dialer::hold;
    w.timers.advance(20s); // the longest delay
    CHECK(w.dials.size() == before + 1);
    CHECK(w.scheduler->is_dialling(ski_a));
}

TEST_CASE("dial scheduler: at most one attempt in flight per SKI", "[dial]") {
    World w;
    w.trust(ski_a);
    w.scheduler->request(ski_a);
    w.timers.advance(3s);
    REQUIRE(w.scheduler->is_dialling(ski_a));
    w.scheduler->request(ski_a);
    w.scheduler->request_now(ski_a);
    CHECK(w.scheduler->pending_timers() == 0);
    w.timers.advance(60s);
    CHECK(w.dials.size() == 1);
}

TEST_CASE("dial scheduler: delay ranges per attempt", "[dial]") {
    // Each failed attempt draws the next delay; recorded per attempt.
    auto delays_with = [](std::unique_ptr<RandomSource> r, int attempts) {
        World w(std::move(r));
        w.dialer = World::Dialer::fail_at_once;
        w.trust(ski_a);
        std::vector<milliseconds> delays;
        w.scheduler->request(ski_a);
        for (int i = 0; i < attempts; ++i) {
            delays.push_back(w.timers.last_delay());
            w.timers.advance(w.timers.last_delay());
        }
        REQUIRE(w.dials.size() == static_cast<std::size_t>(attempts));
        return delays;
    };
    using V = std::vector<milliseconds>;
    CHECK(delays_with(std::make_unique<EdgeRandom>(false), 4) == V{0ms, 3000ms, 10000ms, 10000ms});
    CHECK(delays_with(std::make_unique<EdgeRandom>(true), 4) == V{3000ms, 10000ms, 20000ms, 20000ms});

    const auto seeded = delays_with(std::make_unique<SeededRandom>(2024), 200);
    for (std::size_t i = 0; i < seeded.size(); ++i) {
        const DelayRange range = attempt_delay(static_cast<unsigned>(std::min<std::size_t>(i, 2)));
        INFO("attempt " << i);
        CHECK(seeded[i] >= range.min);
        CHECK(seeded[i] <= range.max);
    }
    // The seeded draws really spread over the 10–20 s range rather than sitting on one value.
    const auto [lo, hi] = std::minmax_element(seeded.begin() + 2, seeded.end());
    CHECK(*lo < 11000ms);
    CHECK(*hi > 19000ms);
}

TEST_CASE("dial scheduler: the attempt counter resets after a completed handshake", "[dial]") {
    World w(std::make_unique<EdgeRandom>(true));
    w.dialer = World::Dialer::fail_at_once;
    w.trust(ski_a);
    w.scheduler->request(ski_a);
    w.timers.advance(3s + 10s + 20s);
    REQUIRE(w.dials.size() == 3);
    CHECK(w.scheduler->attempts(ski_a) == 2);
    CHECK(w.timers.last_delay() == 20000ms);

    // The peer dialled us meanwhile and the handshake completed; later that connection ends.
    w.scheduler->handshake_completed(ski_a);
    CHECK(w.scheduler->attempts(ski_a) == 0);
    CHECK(w.scheduler->pending_timers() == 0);
    w.scheduler->request(ski_a);
    CHECK(w.timers.last_delay() == 3000ms);
}

TEST_CASE("dial scheduler: a failing peer is never dialled in a busy loop", "[dial]") {
    World w;
    w.dialer = World::Dialer::fail_at_once;
    w.trust(ski_a);
    w.scheduler->request(ski_a);
    w.timers.advance(600s);
    // ≤ 3 s, then ≥ 3 s, then ≥ 10 s apart: at most 2 + 594/10 dials in ten minutes.
    REQUIRE(w.dials.size() >= 30);
    CHECK(w.dials.size() <= 61);
    for (std::size_t i = 1; i < w.dials.size(); ++i)
        CHECK(w.dials[i].at - w.dials[i - 1].at >= (i == 1 ? 3000ms : 10000ms));
}

TEST_CASE("dial scheduler: request_now dials without the delay", "[dial]") {
    World w(std::make_unique<EdgeRandom>(true));
    w.trust(ski_a);
    w.scheduler->request(ski_a);
    w.scheduler->request_now(ski_a);
    w.timers.advance(0ms);
    CHECK(w.dials.size() == 1);
    CHECK(w.timers.pending() == 0);
}

TEST_CASE("dial scheduler: forgetting an untrusted peer stops its dials for good", "[dial]") {
    World w;
    w.trust(ski_a);
    w.trust(ski_b);
    w.scheduler->request(ski_a);
    w.scheduler->request(ski_b);
    w.timers.advance(3s);
    REQUIRE(w.scheduler->is_dialling(ski_a));
    w.trusted.erase(ski_a);
    w.scheduler->forget(ski_a);
    CHECK(w.cancels == 1);
    CHECK(w.scheduler->in_flight() == 1); // ski_b's
    CHECK(w.scheduler->attempts(ski_a) == 0);
    w.fail(ski_b);
    w.timers.advance(100s);
    CHECK(w.dials_to(ski_a) == 1);
    CHECK(w.dials_to(ski_b) >= 2);
}

TEST_CASE("bug class 6: no reconnect timer callback runs after stop", "[dial][bug-class-6]") {
    World w;
    for (int i = 0; i < 5; ++i) {
        w.trust(nth_ski(i));
        w.scheduler->request(nth_ski(i));
    }
    REQUIRE(w.timers.pending() == 5);
    w.stop.request_stop();
    // Even a timer service that failed to cancel, or a callback already queued, must find nothing to do.
    w.timers.ignore_cancel(true);
    SECTION("stop requested and the scheduler shut down") {
        w.scheduler->shutdown();
    }
    SECTION("stop requested only") {}
    SECTION("the scheduler already destroyed") {
        w.scheduler.reset();
    }
    w.hook_calls = 0;
    w.timers.fire_all_now();
    CHECK(w.hook_calls == 0);
    CHECK(w.dials.empty());
    if (w.scheduler) {
        w.scheduler->request(ski_a); // nothing is scheduled after stop either
        CHECK(w.timers.pending() == 0);
    }
}

TEST_CASE("bug class 7: a dial completing after stop never registers", "[dial][bug-class-7]") {
    World w;
    w.trust(ski_a);
    w.trust(ski_b);
    w.scheduler->request(ski_a);
    w.scheduler->request(ski_b);
    w.timers.advance(3s);
    REQUIRE(w.scheduler->in_flight() == 2);
    Registry registry(nth_ski(999), DoubleConnectionRule::spec, w.stop.get_token());
    int builds = 0;
    auto complete_and_register = [&](const std::string& ski) {
        if (!w.complete(ski)) return false;
        auto r = registry.swap(ski, Direction::outgoing, [&] {
            ++builds;
            return fake(ski, Direction::outgoing);
        });
        return r.decision == Decision::keep_new;
    };

    w.drop_on_cancel = false; // the transport finishes its dial anyway
    w.stop.request_stop();
    SECTION("with the scheduler shut down") {
        w.scheduler->shutdown();
        CHECK(w.cancels == 2);
        CHECK(w.scheduler->in_flight() == 2); // counted until the dials really end: the hub drains them
    }
    SECTION("with the scheduler destroyed") {
        w.scheduler.reset();
    }
    CHECK_FALSE(complete_and_register(ski_a));
    w.fail(ski_b);
    CHECK(builds == 0);
    CHECK(registry.size() == 0);
    if (w.scheduler) CHECK(w.scheduler->in_flight() == 0);
    w.timers.fire_all_now();
    CHECK(w.dials.size() == 2);
}

TEST_CASE("dial scheduler: shutdown drains in-flight dials whose dialer honours cancel", "[dial]") {
    World w;
    for (int i = 0; i < 10; ++i) {
        w.trust(nth_ski(i));
        w.scheduler->request(nth_ski(i));
    }
    w.timers.advance(3s);
    REQUIRE(w.scheduler->in_flight() == 10);
    w.stop.request_stop();
    w.scheduler->shutdown();
    CHECK(w.cancels == 10);
    CHECK(w.scheduler->in_flight() == 0);
    CHECK(w.timers.pending() == 0);
}

TEST_CASE("bug class 10: fired timer entries are gone", "[dial][bug-class-10]") {
    World w;
    for (int i = 0; i < 50; ++i) {
        w.trust(nth_ski(i));
        w.scheduler->request(nth_ski(i));
    }
    REQUIRE(w.scheduler->pending_timers() == 50);
    w.timers.advance(3s);
    CHECK(w.scheduler->pending_timers() == 0);
    CHECK(w.timers.pending() == 0);

    // Half the dials fail and retry; the retries find their peer connected by then (it dialled us).
    for (int i = 0; i < 50; ++i) {
        if (i % 2) {
            w.fail(nth_ski(i));
            w.connected.insert(nth_ski(i));
        } else {
            REQUIRE(w.complete(nth_ski(i)));
            w.connected.insert(nth_ski(i));
            w.scheduler->handshake_completed(nth_ski(i));
        }
    }
    CHECK(w.scheduler->pending_timers() == 25);
    w.timers.advance(10s);
    CHECK(w.scheduler->pending_timers() == 0);
    CHECK(w.timers.pending() == 0);
    CHECK(w.dials.size() == 50);
}
