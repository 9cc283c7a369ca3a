// ship::Connection, PIN state exchange (SHIP 13.4.4.3): pinState none and what ends the connection.
// Exact bytes sent and exact close code and reason, on a virtual clock; TC_SHIP_* names where one applies.
#include "ship/connection.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace ship;
using namespace ship::test;
using Sent = std::vector<Bytes>;

TEST_CASE("TC_SHIP_PIN_001: pin none both ways reaches data exchange; our access methods request goes first",
          "[connection][pin]") {
    for (const auto role : {Role::client, Role::server}) {
        Harness h;
        to_pin(h, role);
        CHECK(h.deadline_in() == 10s);
        h.receive(vec("pin-none"));
        CHECK(h.take_sent() == Sent{vec("access-methods-request")});
        CHECK(h.last_state() == PeerState::completed);
        CHECK(h.completed == 1);
        CHECK(h.conn.in_data_exchange());
        CHECK(h.conn.state_name() == "data-exchange");
        CHECK(h.deadline_in() == 60s); // our accessMethodsRequest's; the PIN wait (10 s) is gone
        h.receive(vec("access-methods-request"));
        CHECK(h.take_sent() == Sent{own_access_methods()});
    }
}

TEST_CASE("PIN: a peer that requires a PIN is closed with a clear reason", "[connection][pin]") {
    Harness h;
    to_pin(h, Role::client);
    h.receive(control(R"({"connectionPinState":[{"pinState":"required"},{"inputPermission":"ok"}]})"));
    CHECK(h.take_sent().empty());
    require_closed(h, 4001, "PIN: the peer requires a PIN; shipd supports only pinState none");
}

TEST_CASE("PIN: the wait for the peer's PIN state is bounded", "[connection][pin]") {
    Harness h;
    to_pin(h, Role::server);
    h.advance(10s);
    require_closed(h, 4001, "PIN: no connectionPinState within 10000 ms");
    CHECK(h.last_state() == PeerState::error);
}

TEST_CASE("PIN: optional PIN and pinOk continue; PIN error and other messages close", "[connection][pin]") {
    SECTION("optional") {
        Harness h;
        to_pin(h, Role::server);
        h.receive(control(R"({"connectionPinState":[{"pinState":"optional"},{"inputPermission":"ok"}]})"));
        CHECK(h.conn.in_data_exchange());
        CHECK(h.notices.back().starts_with("PIN: the peer offers an optional PIN"));
    }
    SECTION("pinOk") {
        Harness h;
        to_pin(h, Role::server);
        h.receive(control(R"({"connectionPinState":[{"pinState":"pinOk"}]})"));
        CHECK(h.conn.in_data_exchange());
    }
    SECTION("connectionPinError") {
        Harness h;
        to_pin(h, Role::server);
        h.receive(control(R"({"connectionPinError":[{"error":1}]})"));
        require_closed(h, 4001, "PIN: the peer reported PIN error 1");
    }
    SECTION("access methods request before the PIN state") {
        Harness h;
        to_pin(h, Role::server);
        h.receive(vec("access-methods-request"));
        require_closed(h, 4001, "PIN: unexpected accessMethodsRequest while waiting for connectionPinState");
    }
    SECTION("a 1-byte message") {
        Harness h;
        to_pin(h, Role::client);
        h.receive(Bytes{0x02});
        require_closed(h, 4001, "PIN: message shorter than 2 bytes");
    }
}
