#include <catch2/catch.hpp>

#include <random>
#include <stop_token>
#include <vector>

#include "manual_timers.hpp"
#include "mini_hub.hpp"

using namespace ship::hub;
using namespace ship::hub::test;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

std::string peer_ski(int n) {
    std::string s(40, '8');
    std::string digits = std::to_string(n);
    s.replace(s.size() - digits.size(), digits.size(), digits);
    return s;
}

} // namespace

// Many peers, random connects in both directions, double dials, peer closes, trust changes, dial failures
// and a stop in the middle of it all, on one virtual strand. Per SKI the connected/disconnected events must
// strictly alternate, every connection is closed at most once, and after stop everything is empty.
TEST_CASE("soak: random connects, closes, double dials and stop keep ownership consistent", "[soak]") {
    struct Case {
        DoubleConnectionRule rule;
        std::string local;
    };
    // Our SKI sorts in the middle of the peers': we are the larger SKI for some, the smaller for others.
    const std::string local = "8888888888888888888888888888888888888850";
    for (Case c : {Case{DoubleConnectionRule::spec, local}, Case{DoubleConnectionRule::legacy, local}}) {
        for (unsigned seed = 1; seed <= 8; ++seed) {
            INFO("rule " << to_string(c.rule) << ", seed " << seed);
            ManualTimers timers;
            SeededRandom random(seed);
            std::mt19937 rng(seed * 7919);
            std::stop_source stop;
            MiniHub hub(c.local, c.rule, timers, random, stop.get_token());
            auto between = [&](int lo, int hi) {
                return milliseconds{std::uniform_int_distribution<int>(lo, hi)(rng)};
            };
            auto chance = [&](int percent) {
                return std::uniform_int_distribution<int>(1, 100)(rng) <= percent;
            };
            auto later = [&](milliseconds d, std::function<void()> f) { timers.schedule(d, std::move(f)); };

            // A connection's close reaches the transport a little later.
            hub.on_close_started = [&](const MiniHub::TransportPtr& t) {
                later(between(1, 100), [&hub, t] { hub.transport_closed(t); });
            };
            // After the upgrade, the SHIP handshake completes, unless the transport went first.
            auto handshake = [&](const MiniHub::TransportPtr& t) {
                later(between(5, 300), [&hub, t] {
                    if (t->open) hub.data_exchange(t);
                });
            };
            // Our dials: fail, or reach the peer and upgrade (a cancelled one ends as a failure).
            hub.on_dial = [&](const MiniHub::TransportPtr& t) {
                later(between(1, 400), [&, t] {
                    if (!t->open) return;
                    if (t->cancelled || chance(30)) {
                        hub.transport_closed(t);
                        return;
                    }
                    hub.upgraded(t);
                    if (t->conn) handshake(t);
                });
            };

            const int peers = 12;
            for (int p = 0; p < peers; ++p)
                hub.trust(peer_ski(p));

            int checked = 0;
            for (int step = 0; step < 3000; ++step) {
                const std::string ski = peer_ski(static_cast<int>(rng() % peers));
                const int what = static_cast<int>(rng() % 100);
                if (what < 40) { // the peer dials us
                    auto t = hub.make_transport(ski, Direction::incoming);
                    later(between(1, 50), [&, t] {
                        if (!hub.verify_incoming(t)) return;
                        later(between(1, 50), [&, t] {
                            if (!t->open) return;
                            hub.upgraded(t);
                            if (t->conn) handshake(t);
                        });
                    });
                } else if (what < 75) { // the peer (or the network) ends one of its connections
                    std::vector<MiniHub::TransportPtr> open;
                    for (auto& [id, t] : hub.transports)
                        if (t->open && t->ski == ski && (t->conn || t->held)) open.push_back(t);
                    if (!open.empty()) hub.transport_closed(open[rng() % open.size()]);
                } else if (what < 80) { // the user withdraws trust, or gives it back
                    if (hub.trusted.contains(ski))
                        hub.untrust(ski);
                    else
                        hub.trust(ski);
                } else if (what < 85) { // the user asks to connect now (a double dial with the scheduler's)
                    if (hub.trusted.contains(ski)) hub.scheduler.request_now(ski);
                }
                timers.advance(between(0, 400));

                // Liveness: a trusted peer always has a connection slot, a dial or a timer coming.
                for (const auto& s : hub.trusted) {
                    INFO("SKI " << s << " at step " << step);
                    CHECK(hub.dial_or_slot_pending(s));
                    ++checked;
                }
            }
            REQUIRE(checked > 0);
            CHECK(hub.violations == 0);
            CHECK(hub.connected_events > 0);

            // Stop in the middle of everything; then let every pending event run out.
            stop.request_stop();
            hub.stop();
            timers.advance(3600s);

            CHECK(hub.violations == 0);
            CHECK(hub.connected_events == hub.disconnected_events);
            for (const auto& [s, is_connected] : hub.connected)
                CHECK_FALSE(is_connected);
            CHECK(hub.registry.size() == 0);
            CHECK(hub.waits.size() == 0);
            CHECK(hub.scheduler.in_flight() == 0);
            CHECK(hub.scheduler.pending_timers() == 0);
            CHECK(timers.pending() == 0);
            for (auto& [id, t] : hub.transports) {
                INFO("transport " << id);
                if (t->conn) CHECK(t->conn->closes <= 1);
                CHECK(t->unbuilt_closes <= 1);
                CHECK_FALSE(t->ticket.held());
            }
        }
    }
}
