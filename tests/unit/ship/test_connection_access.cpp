// ship::Connection, access methods in data exchange (SHIP 13.4.6): requests answered, the peer's id checked.
// Exact bytes sent and exact close code and reason, on a virtual clock; TC_SHIP_* names where one applies.
#include "ship/connection.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace ship;
using namespace ship::test;
using Sent = std::vector<Bytes>;

TEST_CASE("TC_SHIP_AM_001: accessMethodsRequest in data exchange gets our SHIP ID", "[connection][am]") {
    Harness h(trusted_config("Demo-EVSE-234567890"));
    to_data(h, Role::server);
    h.receive(vec("access-methods-request"));
    CHECK(h.take_sent() == Sent{vec("access-methods")});
    h.receive(vec("access-methods-request")); // every request is answered
    CHECK(h.take_sent() == Sent{vec("access-methods")});
}

TEST_CASE("TC_SHIP_AMDATA_001: data, request, data back to back are all handled at once",
          "[connection][am]") {
    Harness h;
    to_data(h, Role::client);
    const Bytes data =
        make_frame(MessageType::data,
                   R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[{"a":1}]}}]})");
    h.receive(data);
    h.receive(vec("access-methods-request"));
    h.receive(data);
    CHECK(h.data == std::vector<std::string>{R"({"datagram":{"a":1}})", R"({"datagram":{"a":1}})"});
    CHECK(h.take_sent() == Sent{own_access_methods()});
}

TEST_CASE("TC_SHIP_AMDATA_002: data is delivered while our request is unanswered; the late answer is taken",
          "[connection][am]") {
    Harness h;
    to_data(h, Role::server);
    h.receive(make_frame(MessageType::data,
                         R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[]}}]})"));
    h.receive(vec("access-methods-request"));
    CHECK(h.data.size() == 1);
    CHECK(h.take_sent() == Sent{own_access_methods()});
    h.advance(8s);
    h.receive(vec("access-methods"));
    CHECK(h.ship_ids == std::vector<std::string>{"Demo-EVSE-234567890"});
    CHECK_FALSE(h.conn.next_deadline()); // nothing awaited any more: no deadline
    require_open(h);
}

TEST_CASE("AM: no accessMethods within 60 s closes politely with an error", "[connection][am]") {
    Harness h;
    to_data(h, Role::client);
    h.advance(60s);
    CHECK(h.take_sent() == Sent{vec("close-announce")});
    CHECK(h.last_state() == PeerState::error);
    CHECK(h.last_error() == "access methods: no accessMethods reply within 60000 ms");
    h.receive(vec("close-confirm"));
    require_closed(h, 4001, "access methods: no accessMethods reply within 60000 ms");
}

TEST_CASE("AM: a SHIP ID other than the known one is an error; an empty id too", "[connection][am]") {
    SECTION("different id") {
        auto config = trusted_config(own_id);
        config.known_peer_ship_id = "Known-EVSE";
        Harness h(config);
        to_data(h, Role::client);
        h.receive(vec("access-methods"));
        CHECK(h.take_sent() == Sent{vec("close-announce")});
        CHECK(h.last_error() ==
              "access methods: the peer's SHIP ID 'Demo-EVSE-234567890' differs from the known 'Known-EVSE'");
        CHECK(h.ship_ids.empty());
        h.advance(500ms);
        require_closed(
            h, 4001,
            "access methods: the peer's SHIP ID 'Demo-EVSE-234567890' differs from the known 'Known-EVSE'");
    }
    SECTION("same id as known") {
        auto config = trusted_config(own_id);
        config.known_peer_ship_id = "Demo-EVSE-234567890";
        Harness h(config);
        to_data(h, Role::client);
        h.receive(vec("access-methods"));
        CHECK(h.ship_ids == std::vector<std::string>{"Demo-EVSE-234567890"});
        require_open(h);
    }
    SECTION("empty id") {
        Harness h;
        to_data(h, Role::client);
        h.receive(access_methods(""));
        CHECK(h.last_error() == "access methods: the peer's accessMethods has an empty id");
    }
}
