// Double connections against each double-connection behaviour in the field (ship-protocol.md §5, issue 17):
// a hub on its default configuration meets a scripted ship-go v0.6 node, a scripted OpenEEBUS node, and
// another hub configured with the other rule, in both SKI orders, with either side dialling first and the
// other following 0–50 ms later. Every case must end with one connection that both sides use, one
// PeerConnected per side, nothing replaced, no second dial.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <future>
#include <map>

#include "hub_harness.hpp"
#include "scripted_stacks.hpp"
#include "tls/test_certs.hpp"

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
        std::printf(
            "convergence against %s (ms from the first dial to one settled connection), offsets 0 2 5 "
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

void against_stack(Stack stack, DoubleConnectionRule hub_rule, const Case& c, Figures& figures) {
    const auto identities = larger_and_smaller();
    NodeOptions options; // the hub's defaults (spec rule, 500 ms verdict wait, 3 s passive wait) but the rule
    options.seed = 7;
    options.rule = hub_rule;
    Node hub("hub", c.hub_larger ? identities.first : identities.second, options);
    StackPeer peer(stack, c.hub_larger ? identities.second : identities.first);
    INFO(to_string(stack) << ", hub " << to_string(hub_rule) << ": " << describe(c));
    peer.trust(hub.ski(), hub.port());
    Relay to_peer(peer.port()); // counts the hub's dials
    REQUIRE_FALSE(hub.call([&](Hub& h) { return h.trust(peer.ski()); }));

    const auto t0 = Clock::now() + 30ms;
    const auto hub_at = t0 + (c.hub_first ? 0ms : c.offset);
    const auto peer_at = t0 + (c.hub_first ? c.offset : 0ms);
    hub.at(hub_at,
           [ski = peer.ski(), port = to_peer.port()](Hub& h) { (void)h.connect(ski, "127.0.0.1", port); });
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
    REQUIRE_FALSE(hub.call([&](Hub& h) {
        return h.send_data(peer.ski(), R"({"datagram":{"header":{},"payload":{"to":"peer"}}})");
    }));
    REQUIRE(peer.wait([](const StackPeer::Stats& s) { return !s.data.empty(); }, 5s));
    REQUIRE(peer.send_data(R"({"datagram":{"header":{},"payload":{"to":"hub"}}})"));
    REQUIRE(hub.log().wait(
        [&](const std::vector<Event>& events) {
            return std::any_of(events.begin(), events.end(), [&](const Event& e) {
                return e.kind == Event::Kind::data && e.ski == peer.ski() &&
                       e.text.find("hub") != std::string::npos;
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

void against_hub(DoubleConnectionRule hub_rule, DoubleConnectionRule peer_rule, const Case& c,
                 Figures& figures) {
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
    hub.at(hub_at,
           [ski = peer.ski(), port = to_peer.port()](Hub& h) { (void)h.connect(ski, "127.0.0.1", port); });
    peer.at(peer_at,
            [ski = hub.ski(), port = to_hub.port()](Hub& h) { (void)h.connect(ski, "127.0.0.1", port); });

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

// Crossings forced in a known order: the side whose link comes second dials first, through a held relay, so
// its dial is in flight before the other link exists (the stacks dial only then); the other side's link
// reaches its upgrade (or data exchange) before the relay lets the held dial go on.
enum class Release { at_upgrade, after_data_exchange };
struct Forced {
    bool hub_larger;
    bool ours_first; // our dial's link comes first (the peer's dial is the held one)
    Release release;
};

std::vector<Forced> forced_cases(bool with_data_exchange) {
    std::vector<Forced> cases;
    for (bool hub_larger : {true, false}) {
        cases.push_back({hub_larger, true, Release::at_upgrade});
        if (with_data_exchange) cases.push_back({hub_larger, true, Release::after_data_exchange});
        cases.push_back({hub_larger, false, Release::at_upgrade});
    }
    return cases;
}

std::string describe(const Forced& f) {
    return std::string("hub SKI ") + (f.hub_larger ? "larger" : "smaller") + ", " +
           (f.ours_first ? "our link" : "the peer's link") + " first, the other released " +
           (f.release == Release::at_upgrade ? "at its upgrade" : "once it is in data exchange");
}

void forced_against_stack(Stack stack, DoubleConnectionRule hub_rule, const Forced& f) {
    const auto identities = larger_and_smaller();
    NodeOptions options;
    options.seed = 7;
    options.rule = hub_rule;
    Node hub("hub", f.hub_larger ? identities.first : identities.second, options);
    StackPeer peer(stack, f.hub_larger ? identities.second : identities.first);
    INFO(to_string(stack) << ", hub " << to_string(hub_rule) << ": " << describe(f));
    Relay to_peer(peer.port()), to_hub(hub.port());
    peer.trust(hub.ski(), to_hub.port());
    REQUIRE_FALSE(hub.call([&](Hub& h) { return h.trust(peer.ski()); }));
    Relay& held = f.ours_first ? to_hub : to_peer;
    held.hold();
    auto hub_dials = [&] {
        REQUIRE_FALSE(hub.call([&](Hub& h) { return h.connect(peer.ski(), "127.0.0.1", to_peer.port()); }));
    };
    if (f.ours_first) {
        peer.dial_at(Clock::now());
        REQUIRE(eventually(hub.log(), [&] { return to_hub.connections() == 1; }));
        hub_dials();
        // Our link has reached the peer's upgrade (the peer decided about it), or data exchange.
        if (f.release == Release::at_upgrade)
            REQUIRE(peer.wait([](const StackPeer::Stats& s) { return s.accepted + s.refused >= 1; }));
        else
            REQUIRE(peer.wait([](const StackPeer::Stats& s) { return s.in_data_exchange; }));
    } else {
        hub_dials();
        REQUIRE(eventually(hub.log(), [&] { return to_peer.connections() == 1; }));
        peer.dial_at(Clock::now());
        // The peer's link has reached the hub (held back, or registered), the hub's dial still in flight.
        REQUIRE(eventually(hub.log(), [&] {
            return hub.call([&](Hub& h) { return h.live_connections() + h.held_links() >= 1; });
        }));
    }
    held.release();

    HubView v;
    StackPeer::Stats p;
    const bool settled = eventually(hub.log(), [&] {
        v = view_of(hub, peer.ski());
        p = peer.stats();
        return v.settled && p.in_data_exchange;
    });
    INFO("hub: slots " << v.slots << " live " << v.live << " held " << v.held << " doubt " << v.doubt
                       << " dialling " << v.dialling << " confirmed " << v.confirmed);
    INFO("peer: dials " << p.dials << " accepted " << p.accepted << " refused " << p.refused << " dropped "
                        << p.dropped << " connected " << p.connected << " lost " << p.lost_connected);
    REQUIRE(settled);
    REQUIRE_FALSE(hub.call([&](Hub& h) {
        return h.send_data(peer.ski(), R"({"datagram":{"header":{},"payload":{"to":"peer"}}})");
    }));
    REQUIRE(peer.wait([](const StackPeer::Stats& s) { return !s.data.empty(); }, 5s));
    p = peer.stats();
    CHECK(hub.log().count(Event::Kind::connected, peer.ski()) == 1);
    CHECK(hub.log().count(Event::Kind::disconnected, peer.ski()) == 0);
    CHECK(p.connected == 1);
    CHECK(p.lost_connected == 0);
    CHECK(to_peer.connections() == 1);
    CHECK(p.dials == 1);
    // Where the peer decided a crossing it could see (our dial second), the hub took its rule from it.
    const auto learned = hub.call([&](Hub& h) { return h.learned_rule(peer.ski()); });
    if (!f.ours_first) {
        REQUIRE(learned);
        if (stack == Stack::openeebus) CHECK(*learned == DoubleConnectionRule::first_come);
        if (stack == Stack::shipgo_v06 && f.hub_larger) CHECK(*learned == DoubleConnectionRule::legacy);
    }
    // ... and kept it with the peer's trust, on disk.
    auto durable = std::make_shared<std::promise<bool>>();
    hub.call([durable](Hub& h) { h.when_persisted([durable](Result r) { durable->set_value(!r); }); });
    auto written = durable->get_future();
    REQUIRE(written.wait_for(deadline) == std::future_status::ready);
    REQUIRE(written.get());
    hub.stop();
    CHECK(to_string(hub.log().violations()) == "");
    const auto stored = TrustStore::load(hub.state_dir(), [](std::function<void()>) {});
    REQUIRE(stored.find(peer.ski()));
    const auto kept = stored.find(peer.ski())->double_connection;
    INFO("learned " << (learned ? to_string(*learned) : "none") << ", stored "
                    << (kept ? to_string(*kept) : "none"));
    CHECK(kept == learned);
}

void forced_against_hub(DoubleConnectionRule peer_rule, const Forced& f) {
    const auto identities = larger_and_smaller();
    NodeOptions options;
    options.seed = 7;
    Node hub("hub", f.hub_larger ? identities.first : identities.second, options);
    options.rule = peer_rule;
    options.seed = 8;
    Node peer("peer", f.hub_larger ? identities.second : identities.first, options);
    INFO("peer hub " << to_string(peer_rule) << ": " << describe(f));
    Relay to_peer(peer.port()), to_hub(hub.port());
    REQUIRE_FALSE(hub.call([&](Hub& h) { return h.trust(peer.ski()); }));
    REQUIRE_FALSE(peer.call([&](Hub& h) { return h.trust(hub.ski()); }));
    Relay& held = f.ours_first ? to_hub : to_peer;
    held.hold();
    auto connect = [](Node& from, const Node& to, std::uint16_t port) {
        REQUIRE_FALSE(from.call([&](Hub& h) { return h.connect(to.ski(), "127.0.0.1", port); }));
    };
    Node& first = f.ours_first ? peer : hub;  // dials into the held relay
    Node& second = f.ours_first ? hub : peer; // its link comes first
    connect(first, second, f.ours_first ? to_hub.port() : to_peer.port());
    REQUIRE(eventually(hub.log(), [&] { return held.connections() == 1; }));
    connect(second, first, f.ours_first ? to_peer.port() : to_hub.port());
    // The second dialler's link has reached the first one (held back or registered there).
    REQUIRE(eventually(hub.log(), [&] {
        return first.call([&](Hub& h) { return h.live_connections() + h.held_links() >= 1; });
    }));
    held.release();

    HubView a, b;
    const bool settled = eventually(hub.log(), [&] {
        a = view_of(hub, peer.ski());
        b = view_of(peer, hub.ski());
        return a.settled && b.settled;
    });
    INFO("hub: slots " << a.slots << " live " << a.live << " held " << a.held << " doubt " << a.doubt
                       << " dialling " << a.dialling << " confirmed " << a.confirmed);
    INFO("peer: slots " << b.slots << " live " << b.live << " held " << b.held << " doubt " << b.doubt
                        << " dialling " << b.dialling << " confirmed " << b.confirmed);
    REQUIRE(settled);
    REQUIRE(same_link(hub, peer, "forced"));
    CHECK(hub.log().count(Event::Kind::connected, peer.ski()) == 1);
    CHECK(peer.log().count(Event::Kind::connected, hub.ski()) == 1);
    CHECK(hub.log().count(Event::Kind::disconnected, peer.ski()) == 0);
    CHECK(peer.log().count(Event::Kind::disconnected, hub.ski()) == 0);
    CHECK(to_peer.connections() == 1);
    CHECK(to_hub.connections() == 1);
    hub.stop();
    peer.stop();
    CHECK(to_string(hub.log().violations()) == "");
    CHECK(to_string(peer.log().violations()) == "");
}

} // namespace

// Each order of a crossing made certain, against each behaviour, with the hub on either configured rule.
// ship-go v0.6 with the smaller SKI and its dial second is the field report: it kept our link, we kept its
// (spec: the most recent) and both went.
TEST_CASE("double connection in forced crossings against ship-go v0.6", "[hub][double][interop]") {
    for (auto rule : {DoubleConnectionRule::spec, DoubleConnectionRule::legacy})
        for (const auto& f : forced_cases(true))
            forced_against_stack(Stack::shipgo_v06, rule, f);
}

// OpenEEBUS refuses our link while its dial runs, so ours never reaches data exchange first. The field
// report: with the legacy rule and the larger SKI both links went.
TEST_CASE("double connection in forced crossings against OpenEEBUS", "[hub][double][interop]") {
    for (auto rule : {DoubleConnectionRule::spec, DoubleConnectionRule::legacy})
        for (const auto& f : forced_cases(false))
            forced_against_stack(Stack::openeebus, rule, f);
}

TEST_CASE("double connection in forced crossings against a hub with the other rule",
          "[hub][double][interop]") {
    for (const auto& f : forced_cases(false))
        forced_against_hub(DoubleConnectionRule::legacy, f);
}

// Before issue 17 the hub on the spec rule lost both links against ship-go v0.6 whenever ship-go had the
// smaller SKI and both dials crossed (each side dropped the link the other kept).
TEST_CASE("double connection against ship-go v0.6 (larger SKI's dial wins, decided after the upgrade)",
          "[hub][double][interop]") {
    for (auto rule : {DoubleConnectionRule::spec, DoubleConnectionRule::legacy}) {
        Figures figures;
        for (const auto& c : sweep())
            against_stack(Stack::shipgo_v06, rule, c, figures);
        figures.print(std::string("scripted ship-go v0.6, hub rule ") + std::string(to_string(rule)));
    }
}

// Before issue 17: with the hub's SKI the smaller, a connection already in data exchange was replaced after
// the 3 s passive wait (PeerConnected twice); with the legacy rule and the larger SKI both links were lost.
TEST_CASE("double connection against OpenEEBUS (first come, refuses our link after the upgrade)",
          "[hub][double][interop]") {
    for (auto rule : {DoubleConnectionRule::spec, DoubleConnectionRule::legacy}) {
        Figures figures;
        for (const auto& c : sweep())
            against_stack(Stack::openeebus, rule, c, figures);
        figures.print(std::string("scripted OpenEEBUS, hub rule ") + std::string(to_string(rule)));
    }
}

TEST_CASE("double connection between a spec hub and a legacy hub", "[hub][double][interop]") {
    // Both SKI orders and both dial orders: the mirrored pairing (a legacy hub against a spec one) is in it.
    Figures figures;
    for (const auto& c : sweep())
        against_hub(DoubleConnectionRule::spec, DoubleConnectionRule::legacy, c, figures);
    figures.print("a legacy hub (this hub: spec)");
}

} // namespace ship::hub::it

namespace ship::hub::it {

// Elli / VW wallboxes send certificates with BOOLEAN TRUE as 0x01 (ship-go needs a patched Go toolchain
// to read them). Such a node is dialled and dials, completes SHIP and exchanges data, with its SKI computed
// from its key.
TEST_CASE("a wallbox certificate with BOOLEAN TRUE as 0x01 handshakes as server and as client",
          "[hub][interop][tls]") {
    const auto wallbox_id = tls::testing::make_identity_with_boolean_true_as_01();
    for (bool hub_dials : {true, false}) {
        INFO((hub_dials ? "the hub dials the wallbox" : "the wallbox dials the hub"));
        Node hub("hub", make_identity("hubit-hub"));
        Node wallbox("wallbox", wallbox_id);
        Node& dialler = hub_dials ? hub : wallbox;
        Node& listener = hub_dials ? wallbox : hub;
        REQUIRE_FALSE(listener.call([&](Hub& h) { return h.trust(dialler.ski()); }));
        dialler.trust_and_connect(listener);
        REQUIRE(hub.log().wait_count(Event::Kind::connected, wallbox_id.ski, 1));
        REQUIRE(wallbox.log().wait_count(Event::Kind::connected, hub.ski(), 1));
        REQUIRE(same_link(hub, wallbox, "wallbox"));
        hub.stop();
        wallbox.stop();
    }
}

} // namespace ship::hub::it
