// Double connections (SHIP 12.2.2, CONN_001) between real hubs: bug classes 2 (decide and register in one
// step), 3 (a replaced connection reports no disconnect), 9 (one owner closes a rejected socket) and 10
// (no fired timer entry lingers).
#include <catch2/catch.hpp>

#include "hub_harness.hpp"

namespace ship::hub::it {
namespace {

const char* rule_name(DoubleConnectionRule rule) {
    return rule == DoubleConnectionRule::spec ? "spec" : "legacy";
}

struct Settled {
    bool ok = false;
    std::size_t slots = 0, live = 0, timers = 0, in_flight = 0;
    bool confirmed = false;
    std::optional<Direction> direction;
};

// One registered, confirmed connection to `peer`, no other connection still closing, no dial in flight,
// no timer pending.
Settled settled_with(Node& node, const std::string& peer) {
    return node.call([&](Hub& hub) {
        Settled s;
        s.slots = hub.registry().size();
        s.live = hub.live_connections();
        s.timers = hub.pending_timers();
        s.in_flight = hub.dials().in_flight();
        s.confirmed = hub.registry().is_confirmed(peer);
        if (auto owner = hub.registry().find(peer)) s.direction = owner->direction();
        s.ok = s.slots == 1 && s.live == 1 && s.timers == 0 && s.in_flight == 0 && s.confirmed;
        return s;
    });
}

bool empty(Node& node) {
    return node.call([](Hub& hub) {
        return hub.registry().size() == 0 && hub.live_connections() == 0 && hub.dials().in_flight() == 0 &&
               hub.pending_timers() == 0;
    });
}

// Both hubs trust each other and dial each other in the same instant, `rounds` times; between rounds both
// withdraw trust (which closes the connection and stops redials) so every round starts from nothing.
void simultaneous_rounds(DoubleConnectionRule rule, bool first_is_larger, int rounds) {
    const auto identities = larger_and_smaller();
    const tls::Identity& larger = identities.first;
    const tls::Identity& smaller = identities.second;
    NodeOptions options;
    options.rule = rule;
    options.passive_wait = 3000ms; // the spec's value: the larger side must settle it long before
    options.seed = 11;
    Node x("x", first_is_larger ? larger : smaller, options);
    options.seed = 12;
    Node y("y", first_is_larger ? smaller : larger, options);
    INFO("rule " << rule_name(rule) << ", x has the " << (first_is_larger ? "larger" : "smaller") << " SKI");
    // Each hub dials the other through a relay that counts dials.
    Relay to_x(x.port()), to_y(y.port());

    for (int round = 1; round <= rounds; ++round) {
        INFO("round " << round);
        const int x_connected = x.log().count(Event::Kind::connected, y.ski());
        const int y_connected = y.log().count(Event::Kind::connected, x.ski());
        const int x_disconnected = x.log().count(Event::Kind::disconnected, y.ski());
        const int y_disconnected = y.log().count(Event::Kind::disconnected, x.ski());

        const int x_dials = to_y.connections(), y_dials = to_x.connections();
        auto dial = [](Node& from, const Node& to, std::uint16_t port) {
            return from.async([&to, port](Hub& hub) -> Result {
                if (auto e = hub.trust(to.ski())) return e;
                return hub.connect(to.ski(), "127.0.0.1", port);
            });
        };
        // Both closures are queued before either strand can run one: the two dials start together.
        auto fx = dial(x, y, to_y.port());
        auto fy = dial(y, x, to_x.port());
        REQUIRE(fx.wait_for(deadline) == std::future_status::ready);
        REQUIRE(fy.wait_for(deadline) == std::future_status::ready);
        REQUIRE_FALSE(fx.get());
        REQUIRE_FALSE(fy.get());

        // Converged: exactly one registered, confirmed connection on each side and nothing else alive.
        Settled sx, sy;
        const bool converged = eventually(x.log(), [&] {
            sx = settled_with(x, y.ski());
            sy = settled_with(y, x.ski());
            return sx.ok && sy.ok;
        });
        INFO("x: slots " << sx.slots << " live " << sx.live << " timers " << sx.timers << " dials "
                         << sx.in_flight << " confirmed " << sx.confirmed);
        INFO("y: slots " << sy.slots << " live " << sy.live << " timers " << sy.timers << " dials "
                         << sy.in_flight << " confirmed " << sy.confirmed);
        REQUIRE(converged);
        // The same WebSocket on both sides: one side dialled it, the other accepted it, and data sent on each
        // side's registered connection reaches the other hub's registered connection.
        REQUIRE(sx.direction);
        REQUIRE(sy.direction);
        CHECK(*sx.direction != *sy.direction);
        REQUIRE(same_link(x, y, "round-" + std::to_string(round)));
        // Exactly one PeerConnected per side for this round, and no PeerDisconnected (nothing that
        // completed was replaced).
        CHECK(x.log().count(Event::Kind::connected, y.ski()) == x_connected + 1);
        CHECK(y.log().count(Event::Kind::connected, x.ski()) == y_connected + 1);
        CHECK(x.log().count(Event::Kind::disconnected, y.ski()) == x_disconnected);
        CHECK(y.log().count(Event::Kind::disconnected, x.ski()) == y_disconnected);
        // Settled by the dials of the round: neither side had to dial again because both links were dropped
        // (each side giving up the link the other one kept). A side may not dial at all: its zero-delay timer
        // can find the other side's link already registered.
        CHECK(to_y.connections() - x_dials <= 1);
        CHECK(to_x.connections() - y_dials <= 1);

        // Tear down for the next round.
        auto ux = x.async([&](Hub& hub) { return hub.untrust(y.ski()); });
        auto uy = y.async([&](Hub& hub) { return hub.untrust(x.ski()); });
        REQUIRE(ux.wait_for(deadline) == std::future_status::ready);
        REQUIRE(uy.wait_for(deadline) == std::future_status::ready);
        REQUIRE(eventually(x.log(), [&] { return empty(x) && empty(y); }));
        CHECK(x.log().count(Event::Kind::disconnected, y.ski()) == x_disconnected + 1);
        CHECK(y.log().count(Event::Kind::disconnected, x.ski()) == y_disconnected + 1);
    }
    x.stop();
    y.stop();
    CHECK(to_string(x.log().violations()) == "");
    CHECK(to_string(y.log().violations()) == "");
}

} // namespace

// Fails if deciding and registering were separate steps (two winners: two registered links, or links that
// differ between the sides so data is lost; or none: a round that never converges), or if a side emitted a
// second PeerConnected for one round.
TEST_CASE("bug class 2: hubs dialling each other at the same moment keep one and the same link (spec rule)",
          "[hub][double]") {
    simultaneous_rounds(DoubleConnectionRule::spec, true, 20);
    simultaneous_rounds(DoubleConnectionRule::spec, false, 20);
}

TEST_CASE("bug class 2: hubs dialling each other at the same moment keep one and the same link (legacy rule)",
          "[hub][double]") {
    simultaneous_rounds(DoubleConnectionRule::legacy, true, 20);
    simultaneous_rounds(DoubleConnectionRule::legacy, false, 20);
}

namespace {

// 100 WebSockets from one SKI arrive at once. Exactly one stays registered; every other one is either
// refused before the upgrade (HTTP 503) or closed by the hub with exactly one close frame 4001 "double
// connection" (one close owner: a second owner would cut the socket, 1001/1006, or lose the frame).
void hundred_dials(DoubleConnectionRule rule, bool hub_is_larger) {
    const auto identities = larger_and_smaller();
    const tls::Identity& larger = identities.first;
    const tls::Identity& smaller = identities.second;
    NodeOptions options;
    options.rule = rule;
    options.max_connections = 256;
    options.max_handshakes = 256;
    options.passive_wait = 300ms; // the smaller side's own decision comes after this
    Node hub("hub", hub_is_larger ? larger : smaller, options);
    const tls::Identity& peer = hub_is_larger ? smaller : larger;
    INFO("rule " << rule_name(rule) << ", the hub has the " << (hub_is_larger ? "larger" : "smaller")
                 << " SKI");

    PeerPool pool;
    const auto id = pool.add_identity(peer);
    constexpr std::size_t n = 100;
    const std::size_t first = pool.dial(id, hub.port(), hub.ski(), PeerPool::Mode::silent, n);

    auto done = [&](const std::vector<PeerPool::Outcome>& all) {
        std::size_t open = 0, closed = 0;
        for (std::size_t i = first; i < first + n; ++i) {
            if (all[i].closed)
                ++closed;
            else if (all[i].opened)
                ++open;
        }
        return closed == n - 1 && open == 1;
    };
    const bool one_left = pool.wait(done);
    std::size_t refused = 0, closed_double = 0, survivors = 0;
    std::vector<std::string> other;
    for (const auto& o : pool.outcomes()) {
        if (!o.closed) {
            survivors += o.opened ? 1 : 0;
            continue;
        }
        if (!o.opened && o.closed->reason.find("HTTP 503") != std::string::npos)
            ++refused;
        else if (o.opened && o.closed->by == net::CloseInfo::By::peer &&
                 o.closed->code == ship::close_code_ship && o.closed->reason == double_connection_reason)
            ++closed_double;
        else
            other.push_back(std::string(net::to_string(o.closed->by)) + " " + std::to_string(o.closed->code) +
                            " " + o.closed->reason + (o.opened ? " (after open)" : " (never open)"));
    }
    INFO("refused " << refused << ", closed as double connection " << closed_double << ", survivors "
                    << survivors << ", other:\n"
                    << to_string(other));
    REQUIRE(one_left);
    CHECK(survivors == 1);
    CHECK(other.empty());
    CHECK(refused + closed_double == n - 1);
    // The hub holds exactly the survivor: one slot, one live connection, no passive wait left.
    REQUIRE(eventually(hub.log(), [&] {
        return hub.call([&](Hub& h) {
            return h.registry().size() == 1 && h.registry().is_connected(peer.ski) &&
                   h.live_connections() == 1 && h.pending_timers() == 0;
        });
    }));

    // The survivor goes away: the hub ends up with nothing.
    for (std::size_t i = first; i < first + n; ++i)
        if (!pool.outcome(i).closed) pool.close(i, net::close_normal, "test over");
    REQUIRE(eventually(hub.log(), [&] {
        return hub.call([](Hub& h) { return h.registry().size() == 0 && h.live_connections() == 0; });
    }));
    hub.stop();
    CHECK(hub.log().count(Event::Kind::connected, peer.ski) == 0);
    CHECK(to_string(hub.log().violations()) == "");
}

} // namespace

// Fails if the registry could be raced into two owners (two survivors), if a loser's socket had two closers
// (close frame missing or not 4001 "double connection"), or if a held duplicate's passive-wait timer stayed.
TEST_CASE("bug class 2 and 9: 100 concurrent dials with one SKI leave exactly one registered connection",
          "[hub][double]") {
    for (auto rule : {DoubleConnectionRule::spec, DoubleConnectionRule::legacy})
        for (bool hub_is_larger : {true, false})
            hundred_dials(rule, hub_is_larger);
}

namespace {

// A registered peer connection still in its handshake is replaced by a newer connection with the same SKI
// (here a silent link, then a SHIP link holding the same certificate): the newer one wins under every
// configuration below once the double connection is decided. The replaced link's close (reported later)
// must then report nothing: no PeerDisconnected, no state reset, no reconnect from it.
void replaced(DoubleConnectionRule rule, bool hub_is_larger) {
    const auto identities = larger_and_smaller();
    const tls::Identity& larger = identities.first;
    const tls::Identity& smaller = identities.second;
    NodeOptions options;
    options.rule = rule;
    options.passive_wait = 300ms;
    options.verdict_wait = 100ms;
    Node hub("hub", hub_is_larger ? larger : smaller, options);
    const tls::Identity& peer = hub_is_larger ? smaller : larger;
    INFO("rule " << rule_name(rule) << ", the hub has the " << (hub_is_larger ? "larger" : "smaller")
                 << " SKI");
    REQUIRE_FALSE(hub.call([&](Hub& h) { return h.trust(peer.ski); }));

    PeerPool pool;
    const auto id = pool.add_identity(peer, "hubit-peer");
    const auto old_link = pool.dial(id, hub.port(), hub.ski(), PeerPool::Mode::silent);
    REQUIRE(pool.wait([&](const auto& all) { return all[old_link].opened || all[old_link].closed; }));
    REQUIRE(eventually(hub.log(), [&] {
        return hub.call(
            [&](Hub& h) { return h.registry().is_connected(peer.ski) && h.live_connections() == 1; });
    }));

    const auto link = pool.dial(id, hub.port(), hub.ski(), PeerPool::Mode::ship);
    REQUIRE(pool.wait([&](const auto& all) { return all[link].data_exchange || all[link].closed; }));
    REQUIRE(pool.outcome(link).data_exchange);
    REQUIRE(hub.log().wait_count(Event::Kind::connected, peer.ski, 1));

    // The old link was closed as the loser, and its close has been reported (one live connection left).
    REQUIRE(pool.wait([&](const auto& all) { return all[old_link].closed.has_value(); }));
    const auto old_end = *pool.outcome(old_link).closed;
    CHECK(old_end.code == ship::close_code_ship);
    CHECK(old_end.reason == double_connection_reason);
    REQUIRE(
        eventually(hub.log(), [&] { return hub.call([](Hub& h) { return h.live_connections() == 1; }); }));

    std::vector<Event::Kind> ownership;
    for (const auto& e : hub.log().events())
        if (e.ski == peer.ski && (e.kind == Event::Kind::connected || e.kind == Event::Kind::disconnected))
            ownership.push_back(e.kind);
    CHECK(ownership == std::vector<Event::Kind>{Event::Kind::connected});
    // The replacement owns the slot, still completed, and no redial was scheduled from the old link's end.
    CHECK(hub.call([&](Hub& h) {
        const auto p = h.peer(peer.ski);
        return p && p->state == PeerState::completed && h.registry().is_confirmed(peer.ski) &&
               !h.dials().has_timer(peer.ski) && !h.dials().is_dialling(peer.ski);
    }));
    REQUIRE_FALSE(hub.call([&](Hub& h) {
        return h.send_data(peer.ski, R"({"datagram":{"header":{},"payload":{"n":"replaced"}}})");
    }));
    REQUIRE(pool.wait([&](const auto& all) { return !all[link].data.empty(); }));
    hub.stop();
    CHECK(to_string(hub.log().violations()) == "");
}

} // namespace

// Fails if the replaced connection's end counted as the slot owner's: a PeerDisconnected, the peer's state
// reset to none, or a redial scheduled while the replacement is connected.
TEST_CASE("bug class 3: a replaced connection's close produces no peer_disconnected", "[hub][double]") {
    replaced(DoubleConnectionRule::spec, true);
    replaced(DoubleConnectionRule::spec, false);
    // Legacy: both links are the peer's; its (the larger's) newer dial wins when the hub is the smaller.
    replaced(DoubleConnectionRule::legacy, false);
}

// A link in data exchange is never replaced by a newer one that is not further along: a new link from the
// same SKI is refused before its upgrade (so no stack counts it), and the old one must answer a ping within
// the probe bound. A peer that rebooted dials again while its old TCP connection still looks open here:
// the old one then answers nothing, is dropped, and the peer's next dial gets through.
TEST_CASE("a peer dialling again while a link to it is in data exchange: refused; the old link must answer",
          "[hub][double]") {
    const auto identities = larger_and_smaller();
    for (bool hub_is_larger : {true, false}) {
        INFO("the hub has the " << (hub_is_larger ? "larger" : "smaller") << " SKI");
        NodeOptions options;
        options.probe_bound = 300ms * time_scale();
        Node hub("hub", hub_is_larger ? identities.first : identities.second, options);
        Node peer("peer", hub_is_larger ? identities.second : identities.first);
        REQUIRE_FALSE(peer.call([&](Hub& h) { return h.trust(hub.ski()); }));
        hub.trust_and_connect(peer);
        REQUIRE(hub.log().wait_count(Event::Kind::connected, peer.ski(), 1));
        REQUIRE(peer.log().wait_count(Event::Kind::connected, hub.ski(), 1));

        // Alive: the newcomer is refused, the old link answers the ping and stays.
        PeerPool pool;
        const auto id = pool.add_identity(peer.identity(), "hubit-peer");
        const auto early = pool.dial(id, hub.port(), hub.ski(), PeerPool::Mode::ship);
        REQUIRE(pool.wait([&](const auto& all) { return all[early].closed.has_value(); }));
        CHECK_FALSE(pool.outcome(early).opened);
        CHECK(pool.outcome(early).closed->reason.find("HTTP 503") != std::string::npos);
        // Well past the probe bound: the old link is still the one, in data exchange.
        const auto probed_at = Clock::now();
        REQUIRE_FALSE(
            hub.log().wait_count(Event::Kind::disconnected, peer.ski(), 1, 2 * options.probe_bound));
        CHECK(Clock::now() - probed_at >= 2 * options.probe_bound);
        REQUIRE(same_link(hub, peer, "still"));

        // Dead (the peer's strand answers nothing, as a peer that went away without a FIN): refused again,
        // and this time the old link is dropped within the probe bound; the next dial gets through.
        Node::Block silent(peer);
        const auto refused = pool.dial(id, hub.port(), hub.ski(), PeerPool::Mode::ship);
        const auto asked = Clock::now();
        REQUIRE(pool.wait([&](const auto& all) { return all[refused].closed.has_value(); }));
        CHECK(pool.outcome(refused).closed->reason.find("HTTP 503") != std::string::npos);
        REQUIRE(hub.log().wait_count(Event::Kind::disconnected, peer.ski(), 1, 5s));
        const auto dropped_after =
            std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - asked);
        INFO("dropped after " << dropped_after.count() << " ms");
        CHECK(dropped_after < 2000ms * time_scale());
        const auto events = hub.log().events();
        const auto last_disconnect = std::find_if(events.rbegin(), events.rend(), [&](const Event& e) {
            return e.kind == Event::Kind::disconnected && e.ski == peer.ski();
        });
        REQUIRE(last_disconnect != events.rend());
        CHECK(last_disconnect->text.find("no pong") != std::string::npos);
        const auto again = pool.dial(id, hub.port(), hub.ski(), PeerPool::Mode::ship);
        REQUIRE(pool.wait([&](const auto& all) { return all[again].data_exchange || all[again].closed; }));
        CHECK(pool.outcome(again).data_exchange);
        REQUIRE(hub.log().wait_count(Event::Kind::connected, peer.ski(), 2));
        silent.release();
        hub.stop();
        peer.stop();
        CHECK(to_string(hub.log().violations()) == "");
    }
}

// SHIP 13.4.7 on the wire: a connection in data exchange that the hub ends (a user's Disconnect here; the
// double-connection close, trust removal and stop take the same path) gets connectionClose announce, and
// its WebSocket close comes only after the peer's confirm, or after maxTime (500 ms) without one.
TEST_CASE("SHIP 13.4.7: the announce is followed by the confirm or maxTime before the WebSocket close",
          "[hub][double][term]") {
    const auto identities = larger_and_smaller();
    Node hub("hub", identities.first);
    REQUIRE_FALSE(hub.call([&](Hub& h) { return h.trust(identities.second.ski); }));
    PeerPool pool;
    const auto id = pool.add_identity(identities.second, "hubit-closer");
    for (auto mode : {PeerPool::Mode::ship_late_confirm, PeerPool::Mode::ship_no_confirm}) {
        const bool confirms = mode == PeerPool::Mode::ship_late_confirm;
        INFO((confirms ? "the peer confirms 200 ms late" : "the peer never confirms"));
        const auto link = pool.dial(id, hub.port(), hub.ski(), mode);
        REQUIRE(pool.wait([&](const auto& all) { return all[link].data_exchange || all[link].closed; }));
        REQUIRE(eventually(hub.log(), [&] {
            return hub.call([&](Hub& h) { return h.registry().is_confirmed(identities.second.ski); });
        }));
        REQUIRE_FALSE(hub.call([&](Hub& h) { return h.disconnect(identities.second.ski, "test over"); }));
        REQUIRE(pool.wait([&](const auto& all) { return all[link].closed.has_value(); }));
        const auto o = pool.outcome(link);
        REQUIRE(o.announce_at);
        REQUIRE(o.closed_at);
        const auto gap = std::chrono::duration_cast<std::chrono::milliseconds>(*o.closed_at - *o.announce_at);
        INFO("WebSocket closed " << gap.count() << " ms after the announce: " << o.closed->code << " "
                                 << o.closed->reason);
        CHECK(o.close_announces == 1);
        if (confirms) {
            CHECK(gap >= PeerPool::late_confirm - 5ms);
            CHECK(gap < 500ms * time_scale());
        } else {
            CHECK(gap >= 495ms);
            CHECK(o.closed->by == net::CloseInfo::By::peer);
            CHECK(o.closed->code == ship::close_code_ship);
        }
        REQUIRE(hub.log().wait_count(Event::Kind::disconnected, identities.second.ski, confirms ? 1 : 2));
    }
    hub.stop();
    CHECK(to_string(hub.log().violations()) == "");
}

// CONN_001 with the hub as the larger SKI: it dials the tool (A); the tool takes A's TCP but does not answer
// and instead dials the hub (B) with the same certificate. The hub keeps B, the newer one, runs the handshake
// on it and aborts its own dial A before it ever opens. Fails if dial A were left running (it would open
// later and, as the most recent, replace B) or B were refused.
TEST_CASE("CONN_001: the larger SKI keeps the newer incoming link and aborts its own dial", "[hub][double]") {
    const auto identities = larger_and_smaller();
    const tls::Identity& larger = identities.first;
    const tls::Identity& smaller = identities.second;
    NodeOptions options;
    options.connect_timeout = 30s; // dial A ends only because the hub aborts it
    Node hub("hub", larger, options);
    Tarpit tool_listener;
    REQUIRE_FALSE(hub.call([&](Hub& h) -> Result {
        if (auto e = h.trust(smaller.ski)) return e;
        return h.connect(smaller.ski, "127.0.0.1", tool_listener.port());
    }));
    REQUIRE(tool_listener.wait_accepted(1));
    REQUIRE(hub.call([&](Hub& h) { return h.dials().is_dialling(smaller.ski); }));

    PeerPool tool;
    const auto b =
        tool.dial(tool.add_identity(smaller, "hubit-tool"), hub.port(), hub.ski(), PeerPool::Mode::ship);
    REQUIRE(tool.wait([&](const auto& all) { return all[b].data_exchange || all[b].closed; }));
    CHECK(tool.outcome(b).data_exchange);
    REQUIRE(tool_listener.wait_hung_up(1));
    REQUIRE(hub.log().wait_count(Event::Kind::connected, smaller.ski, 1));
    CHECK(hub.call([&](Hub& h) {
        auto owner = h.registry().find(smaller.ski);
        return owner && owner->direction() == Direction::incoming && h.dials().in_flight() == 0 &&
               h.live_connections() == 1;
    }));
    CHECK(tool_listener.accepted() == 1);
    hub.stop();
    CHECK(hub.log().count(Event::Kind::connected, smaller.ski) == 1);
    CHECK(to_string(hub.log().violations()) == "");
}

// Fails if fired timer entries stayed in the hub's timer table (bug class 10): every Connect on a connected
// peer arms a zero-delay dial timer that fires, finds the peer connected and does nothing.
TEST_CASE("bug class 10: fired timer entries are gone once they ran", "[hub][timers]") {
    const auto identities = larger_and_smaller();
    const tls::Identity& larger = identities.first;
    const tls::Identity& smaller = identities.second;
    Node a("a", larger);
    Node b("b", smaller);
    REQUIRE_FALSE(b.call([&](Hub& h) { return h.trust(a.ski()); }));
    a.trust_and_connect(b);
    REQUIRE(a.log().wait_count(Event::Kind::connected, b.ski(), 1));
    REQUIRE(eventually(a.log(), [&] { return a.call([](Hub& h) { return h.pending_timers() == 0; }); }));
    for (int i = 0; i < 50; ++i) {
        INFO("connect " << i);
        REQUIRE_FALSE(a.call([&](Hub& h) { return h.connect(b.ski(), "127.0.0.1", b.port()); }));
        REQUIRE(eventually(a.log(),
                           [&] { return a.call([&](Hub& h) { return !h.dials().has_timer(b.ski()); }); }));
        CHECK(a.call([](Hub& h) { return h.pending_timers(); }) == 0);
    }
    // Still the one connection it was.
    CHECK(a.log().count(Event::Kind::connected, b.ski()) == 1);
    CHECK(a.call([&](Hub& h) { return h.registry().is_confirmed(b.ski()) && h.live_connections() == 1; }));
    a.stop();
    b.stop();
    CHECK(to_string(a.log().violations()) == "");
}

} // namespace ship::hub::it
