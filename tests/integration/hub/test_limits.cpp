// The hub's admission limits on the real transport: beyond max_handshakes or max_connections a new
// connection is refused before the upgrade (HTTP 503), the refusal is logged, and the others carry on.
#include <catch2/catch.hpp>

#include "hub_harness.hpp"

namespace ship::hub::it {
namespace {

bool refused_503(const PeerPool::Outcome& o) {
    return o.closed && !o.opened && o.closed->reason.find("HTTP 503") != std::string::npos;
}

} // namespace

// Fails if a connection beyond the handshake limit were upgraded (or the limit counted wrongly), if the
// refusal were silent in the log, or if refusing disturbed the connections already there.
TEST_CASE("limits: beyond max_handshakes a new connection gets 503 and the others carry on",
          "[hub][limits]") {
    NodeOptions options;
    options.max_handshakes = 2;
    options.max_connections = 10;
    // The limit counts peers that are trusted (here: accepted); untrusted ones have a budget of their own
    // (lib/hub/pairing.hpp, tests/integration/pairing) and never count against it.
    options.auto_accept = true;
    Node hub("hub", make_identity("hubit-hub"), options);
    PeerPool pool;
    std::vector<std::size_t> ids;
    for (int i = 0; i < 4; ++i)
        ids.push_back(pool.add_identity(make_identity("hubit-limit-" + std::to_string(i))));

    // Two silent peers: both stay in the handshake (the hub waits for their CMI).
    const auto first = pool.dial(ids[0], hub.port(), hub.ski(), PeerPool::Mode::silent);
    const auto second = pool.dial(ids[1], hub.port(), hub.ski(), PeerPool::Mode::silent);
    REQUIRE(pool.wait([&](const auto& all) { return all[first].opened && all[second].opened; }));
    const auto before = logged("handshakes in progress is the limit").size();

    const auto third = pool.dial(ids[2], hub.port(), hub.ski(), PeerPool::Mode::silent);
    REQUIRE(pool.wait([&](const auto& all) { return all[third].closed.has_value(); }));
    CHECK(refused_503(pool.outcome(third)));
    CHECK(logged("handshakes in progress is the limit").size() == before + 1);
    // The two handshakes in progress were not touched.
    CHECK_FALSE(pool.outcome(first).closed);
    CHECK_FALSE(pool.outcome(second).closed);
    CHECK(hub.call([](Hub& h) { return h.live_connections(); }) == 2);

    // One goes away: there is room again.
    pool.close(first, net::close_normal, "test: make room");
    REQUIRE(
        eventually(hub.log(), [&] { return hub.call([](Hub& h) { return h.live_connections() == 1; }); }));
    const auto fourth = pool.dial(ids[3], hub.port(), hub.ski(), PeerPool::Mode::silent);
    REQUIRE(pool.wait([&](const auto& all) { return all[fourth].opened || all[fourth].closed; }));
    CHECK(pool.outcome(fourth).opened);
    CHECK_FALSE(pool.outcome(second).closed);
    hub.stop();
    CHECK(to_string(hub.log().violations()) == "");
}

// Fails if a connection beyond max_connections were accepted, if the refusal were not logged, or if the
// connections in data exchange stopped exchanging data because of it.
TEST_CASE("limits: beyond max_connections a new connection gets 503 and the others carry on",
          "[hub][limits]") {
    NodeOptions options;
    options.max_connections = 2;
    options.max_handshakes = 8;
    options.auto_accept = true;
    Node hub("hub", make_identity("hubit-hub"), options);
    PeerPool pool;
    std::vector<tls::Identity> identities;
    std::vector<std::size_t> ids;
    for (int i = 0; i < 3; ++i) {
        identities.push_back(make_identity("hubit-limit-" + std::to_string(i)));
        ids.push_back(pool.add_identity(identities.back()));
    }
    const auto first = pool.dial(ids[0], hub.port(), hub.ski(), PeerPool::Mode::ship);
    const auto second = pool.dial(ids[1], hub.port(), hub.ski(), PeerPool::Mode::ship);
    REQUIRE(
        pool.wait([&](const auto& all) { return all[first].data_exchange && all[second].data_exchange; }));
    REQUIRE(hub.log().wait_count(Event::Kind::connected, identities[0].ski, 1));
    REQUIRE(hub.log().wait_count(Event::Kind::connected, identities[1].ski, 1));
    const auto before = logged("connections is the limit").size();

    const auto third = pool.dial(ids[2], hub.port(), hub.ski(), PeerPool::Mode::ship);
    REQUIRE(pool.wait([&](const auto& all) { return all[third].closed.has_value(); }));
    CHECK(refused_503(pool.outcome(third)));
    CHECK(logged("connections is the limit").size() == before + 1);
    CHECK(hub.log().count(Event::Kind::connected, identities[2].ski) == 0);

    // Both established peers still exchange data in both directions.
    for (int i = 0; i < 2; ++i) {
        const auto link = i == 0 ? first : second;
        REQUIRE_FALSE(hub.call([&](Hub& h) {
            return h.send_data(identities[static_cast<std::size_t>(i)].ski,
                               R"({"datagram":{"header":{},"payload":{"to":"peer"}}})");
        }));
        REQUIRE(pool.wait([&](const auto& all) { return !all[link].data.empty(); }));
        REQUIRE(pool.send_data(link, R"({"datagram":{"to":"hub"}})"));
        REQUIRE(hub.log().wait_count(Event::Kind::data, identities[static_cast<std::size_t>(i)].ski, 1));
        CHECK_FALSE(pool.outcome(link).closed);
    }
    hub.stop();
    CHECK(to_string(hub.log().violations()) == "");
}

} // namespace ship::hub::it
