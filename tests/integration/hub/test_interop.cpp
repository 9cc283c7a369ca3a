// Double connections against each double-connection behaviour in the field (ship-protocol.md §5, issue 17):
// a hub on its default configuration meets a scripted ship-go v0.6 node, a scripted OpenEEBUS node, and
// another hub configured with the other rule, in both SKI orders, with either side dialling first and the
// other following 0–50 ms later. Every case must end with one connection that both sides use, one
// PeerConnected per side, nothing replaced, no second dial.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <map>

#include "hub_harness.hpp"
#include "scripted_stacks.hpp"

namespace ship::hub::it {
namespace {

using Millis = std::chrono::milliseconds;

struct Case {
    bool hub_larger;
    bool hub_first;
    Millis offset;
};

std::vector<Case> sweep() {
    std::vector<Case> cases;
    for (bool hub_larger : {true, false})
        for (bool hub_first : {true, false})
            for (auto offset : {0ms, 2ms, 5ms, 10ms, 20ms, 50ms})
                cases.push_back({hub_larger, hub_first, offset});
    return cases;
}

std::string describe(const Case& c) {
    return std::string("hub SKI ") + (c.hub_larger ? "larger" : "smaller") + ", " +
           (c.hub_first ? "hub" : "peer") + " dials first, the other " + std::to_string(c.offset.count()) +
           " ms later";
}

// Convergence times per combination (SKI order, who dials first), printed at the end of a sweep.
class Figures {
public:
    void add(const Case& c, Millis took) {
        by_combo_[std::string(c.hub_larger ? "hub larger" : "hub smaller") + ", " +
                  (c.hub_first ? "hub first" : "peer first")]
            .push_back(took);
    }
    void print(const std::string& title) const {
        std::printf("convergence against %s (ms from the first dial to one settled connection), offsets 0 2 5 "
                    "10 20 50 ms:\n",
                    title.c_str());
        for (const auto& [combo, times] : by_combo_) {
            std::printf("  %-26s", combo.c_str());
            for (auto t : times)
                std::printf(" %5lld", static_cast<long long>(t.count()));
            std::printf("   (max %lld)\n",
                        static_cast<long long>(std::max_element(times.begin(), times.end())->count()));
        }
        std::fflush(stdout);
    }

private:
    std::map<std::string, std::vector<Millis>> by_combo_;
};

struct HubView {
    bool settled = false; // one registered, confirmed connection; nothing held, in doubt or in flight
    std::size_t slots = 0, live = 0, held = 0;
    bool doubt = false, dialling = false, confirmed = false;
};

HubView view_of(Node& node, const std::string& peer) {
    return node.call([&](Hub& h) {
        HubView v;
        v.slots = h.registry().size();
        v.live = h.live_connections();
        v.held = h.held_links();
        v.doubt = h.in_doubt(peer);
        v.dialling = h.dials().is_dialling(peer);
        v.confirmed = h.registry().is_confirmed(peer);
        v.settled = v.slots == 1 && v.live == 1 && v.held == 0 && !v.doubt && !v.dialling && v.confirmed;
        return v;
    });
}

// Polls `condition` every 2 ms (the time it took is a figure of this test), up to the deadline.
template <typename F>
std::optional<Millis> time_until(Clock::time_point from, F&& condition, Millis timeout = deadline) {
    const auto until = Clock::now() + timeout;
    for (;;) {
        if (condition()) return std::chrono::duration_cast<Millis>(Clock::now() - from);
        if (Clock::now() >= until) return std::nullopt;
        std::this_thread::sleep_for(2ms); // polling interval of a measurement, not a wait for an event
    }
}

void against_stack(Stack stack, const Case& c, Figures& figures) {
    const auto identities = larger_and_smaller();
    NodeOptions options; // the hub's defaults: spec rule, 500 ms verdict wait, 3 s passive wait
    options.seed = 7;
    Node hub("hub", c.hub_larger ? identities.first : identities.second, options);
    StackPeer peer(stack, c.hub_larger ? identities.second : identities.first);
    INFO(to_string(stack) << ": " << describe(c));
    peer.trust(hub.ski(), hub.port());
    Relay to_peer(peer.port()); // counts the hub's dials
    REQUIRE_FALSE(hub.call([&](Hub& h) { return h.trust(peer.ski()); }));

    const auto t0 = Clock::now() + 30ms;
    const auto hub_at = t0 + (c.hub_first ? 0ms : c.offset);
    const auto peer_at = t0 + (c.hub_first ? c.offset : 0ms);
    hub.at(hub_at, [ski = peer.ski(), port = to_peer.port()](Hub& h) { (void)h.connect(ski, "127.0.0.1", port); });
    peer.dial_at(peer_at);

    HubView v;
    StackPeer::Stats p;
    const auto took = time_until(std::min(hub_at, peer_at), [&] {
        v = view_of(hub, peer.ski());
        p = peer.stats();
        return v.settled && p.in_data_exchange;
    });
    INFO("hub: slots " << v.slots << " live " << v.live << " held " << v.held << " doubt " << v.doubt
                       << " dialling " << v.dialling << " confirmed " << v.confirmed);
    INFO("peer: dials " << p.dials << " accepted " << p.accepted << " refused " << p.refused << " dropped "
                        << p.dropped << " connected " << p.connected << " lost " << p.lost_connected);
    REQUIRE(took);
    figures.add(c, *took);

    // Data both ways over the one link both sides hold.
    REQUIRE_FALSE(hub.call([&](Hub& h) { return h.send_data(peer.ski(), R"({"datagram":{"to":"peer"}})"); }));
    REQUIRE(peer.wait([](const StackPeer::Stats& s) { return !s.data.empty(); }, 5s));
    REQUIRE(peer.send_data(R"({"datagram":{"to":"hub"}})"));
    REQUIRE(hub.log().wait(
        [&](const std::vector<Event>& events) {
            return std::any_of(events.begin(), events.end(), [&](const Event& e) {
                return e.kind == Event::Kind::data && e.ski == peer.ski() && e.text.find("hub") != std::string::npos;
            });
        },
        5s));

    // No flap, nothing replaced, no second dial from either side.
    p = peer.stats();
    CHECK(hub.log().count(Event::Kind::connected, peer.ski()) == 1);
    CHECK(hub.log().count(Event::Kind::disconnected, peer.ski()) == 0);
    CHECK(p.connected == 1);
    CHECK(p.lost_connected == 0);
    CHECK(to_peer.connections() <= 1);
    CHECK(p.dials <= 1);
    hub.stop();
    CHECK(to_string(hub.log().violations()) == "");
}

void against_hub(DoubleConnectionRule hub_rule, DoubleConnectionRule peer_rule, const Case& c, Figures& figures) {
    const auto identities = larger_and_smaller();
    NodeOptions options;
    options.rule = hub_rule;
    options.seed = 7;
    Node hub("hub", c.hub_larger ? identities.first : identities.second, options);
    options.rule = peer_rule;
    options.seed = 8;
    Node peer("peer", c.hub_larger ? identities.second : identities.first, options);
    INFO("hub " << to_string(hub_rule) << ", peer " << to_string(peer_rule) << ": " << describe(c));
    Relay to_hub(hub.port()), to_peer(peer.port());
    REQUIRE_FALSE(hub.call([&](Hub& h) { return h.trust(peer.ski()); }));
    REQUIRE_FALSE(peer.call([&](Hub& h) { return h.trust(hub.ski()); }));

    const auto t0 = Clock::now() + 30ms;
    const auto hub_at = t0 + (c.hub_first ? 0ms : c.offset);
    const auto peer_at = t0 + (c.hub_first ? c.offset : 0ms);
    hub.at(hub_at, [ski = peer.ski(), port = to_peer.port()](Hub& h) { (void)h.connect(ski, "127.0.0.1", port); });
    peer.at(peer_at, [ski = hub.ski(), port = to_hub.port()](Hub& h) { (void)h.connect(ski, "127.0.0.1", port); });

    HubView a, b;
    const auto took = time_until(std::min(hub_at, peer_at), [&] {
        a = view_of(hub, peer.ski());
        b = view_of(peer, hub.ski());
        return a.settled && b.settled;
    });
    INFO("hub: slots " << a.slots << " live " << a.live << " held " << a.held << " doubt " << a.doubt
                       << " dialling " << a.dialling << " confirmed " << a.confirmed);
    INFO("peer: slots " << b.slots << " live " << b.live << " held " << b.held << " doubt " << b.doubt
                        << " dialling " << b.dialling << " confirmed " << b.confirmed);
    REQUIRE(took);
    figures.add(c, *took);
    REQUIRE(same_link(hub, peer, "interop"));
    CHECK(hub.log().count(Event::Kind::connected, peer.ski()) == 1);
    CHECK(peer.log().count(Event::Kind::connected, hub.ski()) == 1);
    CHECK(hub.log().count(Event::Kind::disconnected, peer.ski()) == 0);
    CHECK(peer.log().count(Event::Kind::disconnected, hub.ski()) == 0);
    CHECK(to_peer.connections() <= 1);
    CHECK(to_hub.connections() <= 1);
    hub.stop();
    peer.stop();
    CHECK(to_string(hub.log().violations()) == "");
    CHECK(to_string(peer.log().violations()) == "");
}

} // namespace

// Before issue 17 the hub on the spec rule lost both links against ship-go v0.6 whenever ship-go had the
// smaller SKI and both dials crossed (each side dropped the link the other kept).
TEST_CASE("double connection against ship-go v0.6 (larger SKI's dial wins, decided after the upgrade)",
          "[hub][double][interop]") {
    Figures figures;
    for (const auto& c : sweep())
        against_stack(Stack::shipgo_v06, c, figures);
    figures.print("scripted ship-go v0.6");
}

// Before issue 17: with the hub's SKI the smaller, a connection already in data exchange was replaced after
// the 3 s passive wait (PeerConnected twice); with the legacy rule and the larger SKI both links were lost.
TEST_CASE("double connection against OpenEEBUS (first come, refuses our link after the upgrade)",
          "[hub][double][interop]") {
    Figures figures;
    for (const auto& c : sweep())
        against_stack(Stack::openeebus, c, figures);
    figures.print("scripted OpenEEBUS");
}

TEST_CASE("double connection between a spec hub and a legacy hub", "[hub][double][interop]") {
    // Both SKI orders and both dial orders: the mirrored pairing (a legacy hub against a spec one) is in it.
    Figures figures;
    for (const auto& c : sweep())
        against_hub(DoubleConnectionRule::spec, DoubleConnectionRule::legacy, c, figures);
    figures.print("a legacy hub (this hub: spec)");
}

} // namespace ship::hub::it
