// ship::Connection, connection mode initialisation (SHIP 13.4.3): roles, the CMI exchange and CmiTimeout.
// Exact bytes sent and exact close code and reason, on a virtual clock; TC_SHIP_* names where one applies.
#include "ship/connection.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace ship;
using namespace ship::test;
using Sent = std::vector<Bytes>;

TEST_CASE("TC_SHIP_ROLE_002: client sends CMI first and waits through 7 s of silence", "[connection][cmi]") {
    Harness h;
    h.open(Role::client);
    CHECK(h.take_sent() == Sent{vec("cmi")});
    CHECK(h.last_state() == PeerState::initiated);
    CHECK(h.conn.state_name() == "cmi-client-wait");
    h.advance(7s);
    require_open(h);
    h.receive(vec("cmi"));
    CHECK(h.take_sent() == Sent{vec("hello-ready")});
    CHECK(h.conn.state_name() == "hello-ready-listen");
    CHECK(h.deadline_in() == 60s); // the CMI timeout (3 s left) is gone; T_hello_init runs now
}

TEST_CASE("TC_SHIP_ROLE_001: server waits silently 7 s, then answers CMI and sends hello",
          "[connection][cmi]") {
    Harness h;
    h.open(Role::server);
    CHECK(h.take_sent().empty());
    CHECK(h.conn.state_name() == "cmi-server-wait");
    h.advance(7s);
    require_open(h);
    h.receive(vec("cmi"));
    CHECK(h.take_sent() == Sent{vec("cmi"), vec("hello-ready")});
    CHECK(h.conn.role() == Role::server);
}

TEST_CASE("TC_SHIP_CMI_001: server gets 01 00, replies its own CMI first, then closes", "[connection][cmi]") {
    Harness h;
    h.open(Role::server);
    h.receive(Bytes{0x01, 0x00});
    CHECK(h.take_sent() == Sent{vec("cmi")});
    require_closed(h, 4001, "CMI: expected 00 00, received 01 00");
    CHECK(h.last_state() == PeerState::error);
    CHECK(h.last_error() == "CMI: expected 00 00, received 01 00");
}

TEST_CASE("TC_SHIP_CMI_002: client gets 01 00 and closes at once, sending nothing more",
          "[connection][cmi]") {
    Harness h;
    h.open(Role::client);
    h.take_sent();
    h.receive(Bytes{0x01, 0x00});
    CHECK(h.take_sent().empty());
    require_closed(h, 4001, "CMI: expected 00 00, received 01 00");
}

TEST_CASE("TC_SHIP_CMI_003: server closes 10 s after TLS when no CMI comes", "[connection][cmi]") {
    Harness h;
    const TimePoint opened = h.now;
    h.open(Role::server);
    CHECK(h.conn.next_deadline() == opened + 10s);
    h.advance(9999ms);
    require_open(h);
    h.advance(1ms);
    CHECK(h.take_sent().empty());
    require_closed(h, 4001, "CMI: no CMI from the peer within 10000 ms");
}

TEST_CASE("TC_SHIP_CMI_004: client closes 10 s after its CMI when the peer stays silent",
          "[connection][cmi]") {
    Harness h;
    h.open(Role::client);
    h.take_sent();
    h.advance(7s);
    require_open(h);
    h.advance(3s);
    CHECK(h.take_sent().empty());
    require_closed(h, 4001, "CMI: no CMI from the peer within 10000 ms");
}

TEST_CASE("TC_SHIP_CMI_005: server gets 00 01, replies CMI, then closes", "[connection][cmi]") {
    Harness h;
    h.open(Role::server);
    h.receive(Bytes{0x00, 0x01});
    CHECK(h.take_sent() == Sent{vec("cmi")});
    require_closed(h, 4001, "CMI: expected 00 00, received 00 01");
}

TEST_CASE("TC_SHIP_CMI_006: client gets 00 01 and closes at once", "[connection][cmi]") {
    Harness h;
    h.open(Role::client);
    h.take_sent();
    h.receive(Bytes{0x00, 0x01});
    CHECK(h.take_sent().empty());
    require_closed(h, 4001, "CMI: expected 00 00, received 00 01");
}

TEST_CASE("CMI: a hello or an empty message in place of the CMI closes with what was received",
          "[connection][cmi]") {
    Harness h;
    h.open(Role::client);
    h.receive(vec("hello-ready"));
    require_closed(h, 4001, "CMI: expected 00 00, received 01 7b 22 63 6f 6e 6e 65 ...");
    Harness e;
    e.open(Role::server);
    e.receive(Bytes{});
    require_closed(e, 4001, "CMI: expected 00 00, received nothing");
}
