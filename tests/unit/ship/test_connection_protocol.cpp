// ship::Connection, the protocol handshake (SHIP 13.4.4.2): announceMax, select, its errors and Wait-Timer.
// Exact bytes sent and exact close code and reason, on a virtual clock; TC_SHIP_* names where one applies.
#include "ship/connection.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace ship;
using namespace ship::test;
using Sent = std::vector<Bytes>;

TEST_CASE("TC_SHIP_PROT_001: server selects 1.0 JSON-UTF8 and sends its PIN state on the echo",
          "[connection][prot]") {
    Harness h;
    to_protocol(h, Role::server);
    SECTION("client offers 1.0") {
        h.receive(vec("protocol-announce-max"));
    }
    SECTION("client offers 1.1 and more formats: we select the common 1.0") {
        h.receive(control(
            R"({"messageProtocolHandshake":[{"handshakeType":"announceMax"},{"version":[{"major":1},{"minor":1}]},{"formats":[{"format":["JSON-UTF16","JSON-UTF8"]}]}]})"));
    }
    SECTION("client uses the flat formats list") {
        h.receive(control(
            R"({"messageProtocolHandshake":[{"handshakeType":"announceMax"},{"version":[{"major":1},{"minor":0}]},{"formats":["JSON-UTF8"]}]})"));
    }
    CHECK(h.take_sent() == Sent{vec("protocol-select")});
    CHECK(h.conn.state_name() == "prot-h-server-listen-confirm");
    CHECK(h.deadline_in() == 10s);
    h.receive(vec("protocol-select"));
    CHECK(h.take_sent() == Sent{vec("pin-none")});
    CHECK(h.last_state() == PeerState::pin);
    CHECK(h.conn.state_name() == "pin-check-listen");
}

TEST_CASE("TC_SHIP_PROT_002: client announces 1.0 JSON-UTF8, echoes the select, sends its PIN state",
          "[connection][prot]") {
    Harness h;
    to_hello(h, Role::client);
    h.receive(vec("hello-ready"));
    CHECK(h.take_sent() == Sent{vec("protocol-announce-max")});
    CHECK(h.conn.state_name() == "prot-h-client-listen-choice");
    h.receive(vec("protocol-select"));
    CHECK(h.take_sent() == Sent{vec("protocol-select"), vec("pin-none")});
    CHECK(h.last_state() == PeerState::pin);
}

TEST_CASE("TC_SHIP_PROT_003: server waits 10 s for announceMax, then error 1 and close",
          "[connection][prot]") {
    Harness h;
    to_protocol(h, Role::server);
    h.advance(9999ms);
    require_open(h);
    h.advance(1ms);
    CHECK(h.take_sent() == Sent{vec("protocol-error-spec-envelope")});
    require_closed(h, 4001, "protocol handshake: no announceMax within 10000 ms");
    CHECK(h.last_state() == PeerState::error);
}

TEST_CASE("TC_SHIP_PROT_004: client waits 10 s for select, then error 1 and close", "[connection][prot]") {
    Harness h;
    to_protocol(h, Role::client);
    h.advance(10s);
    CHECK(h.take_sent() == Sent{vec("protocol-error-spec-envelope")});
    require_closed(h, 4001, "protocol handshake: no select within 10000 ms");
}

TEST_CASE("PROT: server waits 10 s for the select echo, then error 1", "[connection][prot]") {
    Harness h;
    to_protocol(h, Role::server);
    h.receive(vec("protocol-announce-max"));
    h.take_sent();
    h.advance(10s);
    CHECK(h.take_sent() == Sent{vec("protocol-error-spec-envelope")});
    require_closed(h, 4001, "protocol handshake: no select echo within 10000 ms");
}

TEST_CASE("TC_SHIP_PROT_005: server gets hello ready instead of announceMax: error 2", "[connection][prot]") {
    Harness h;
    to_protocol(h, Role::server);
    h.receive(vec("hello-ready"));
    CHECK(h.take_sent() == Sent{handshake_error(2)});
    require_closed(h, 4001, "protocol handshake: unexpected connectionHello, expected announceMax");
}

TEST_CASE("TC_SHIP_PROT_006: client gets hello ready instead of select: error 2, not 3",
          "[connection][prot]") {
    Harness h;
    to_protocol(h, Role::client);
    h.receive(vec("hello-ready"));
    CHECK(h.take_sent() == Sent{handshake_error(2)});
    require_closed(h, 4001, "protocol handshake: unexpected connectionHello, expected select");
}

TEST_CASE("PROT: a select that does not match the offer is error 3", "[connection][prot]") {
    SECTION("client: server selects 2.0") {
        Harness h;
        to_protocol(h, Role::client);
        h.receive(select_version(2, 0));
        CHECK(h.take_sent() == Sent{handshake_error(3)});
        require_closed(
            h, 4001,
            "protocol handshake: the server selected version 2.0 formats [JSON-UTF8], we offered 1.0 "
            "[JSON-UTF8]");
    }
    SECTION("client: server selects another format") {
        Harness h;
        to_protocol(h, Role::client);
        h.receive(control(
            R"({"messageProtocolHandshake":[{"handshakeType":"select"},{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["XML"]}]}]})"));
        CHECK(h.take_sent() == Sent{handshake_error(3)});
        CHECK(
            h.close->reason ==
            "protocol handshake: the server selected version 1.0 formats [XML], we offered 1.0 [JSON-UTF8]");
    }
    SECTION("server: the echo differs from our selection") {
        Harness h;
        to_protocol(h, Role::server);
        h.receive(vec("protocol-announce-max"));
        h.take_sent();
        h.receive(select_version(1, 1));
        CHECK(h.take_sent() == Sent{handshake_error(3)});
        require_closed(
            h, 4001,
            "protocol handshake: the client confirmed version 1.1 formats [JSON-UTF8], we offered 1.0 "
            "[JSON-UTF8]");
    }
    SECTION("server: announceMax without JSON-UTF8") {
        Harness h;
        to_protocol(h, Role::server);
        h.receive(control(
            R"({"messageProtocolHandshake":[{"handshakeType":"announceMax"},{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["XML"]}]}]})"));
        CHECK(h.take_sent() == Sent{handshake_error(3)});
        require_closed(h, 4001,
                       "protocol handshake: nothing in common with announceMax version 1.0 formats [XML]");
    }
    SECTION("server: announceMax version 0.9") {
        Harness h;
        to_protocol(h, Role::server);
        h.receive(control(
            R"({"messageProtocolHandshake":[{"handshakeType":"announceMax"},{"version":[{"major":0},{"minor":9}]},{"formats":[{"format":["JSON-UTF8"]}]}]})"));
        CHECK(h.take_sent() == Sent{handshake_error(3)});
    }
}

TEST_CASE("PROT: the wrong handshake type for the state is error 2", "[connection][prot]") {
    SECTION("server gets select before announceMax") {
        Harness h;
        to_protocol(h, Role::server);
        h.receive(vec("protocol-select"));
        CHECK(h.take_sent() == Sent{handshake_error(2)});
        require_closed(h, 4001, "protocol handshake: unexpected select, expected announceMax");
    }
    SECTION("client gets announceMax") {
        Harness h;
        to_protocol(h, Role::client);
        h.receive(vec("protocol-announce-max"));
        CHECK(h.take_sent() == Sent{handshake_error(2)});
        require_closed(h, 4001, "protocol handshake: unexpected announceMax, expected select");
    }
    SECTION("server gets a second announceMax instead of the echo") {
        Harness h;
        to_protocol(h, Role::server);
        h.receive(vec("protocol-announce-max"));
        h.take_sent();
        h.receive(vec("protocol-announce-max"));
        CHECK(h.take_sent() == Sent{handshake_error(2)});
        require_closed(h, 4001, "protocol handshake: unexpected announceMax, expected select echo");
    }
}

TEST_CASE("PROT: malformed input in the protocol handshake is error 2 with the reason",
          "[connection][prot][msg]") {
    Harness h;
    to_protocol(h, Role::server);
    h.receive(Bytes{0x01, '{'});
    CHECK(h.take_sent() == Sent{handshake_error(2)});
    require_closed(h, 4001,
                   "protocol handshake: invalid JSON at offset 1: Missing a name for object member.");
}

TEST_CASE("PROT: the peer's handshake error closes without an answer (both envelopes)",
          "[connection][prot]") {
    Harness h;
    to_protocol(h, Role::client);
    SECTION("spec envelope") {
        h.receive(handshake_error(1));
        CHECK(h.take_sent().empty());
        require_closed(h, 4001, "protocol handshake: the peer sent error 1 (timeout)");
    }
    SECTION("legacy envelope") {
        h.receive(vec("protocol-error-legacy-envelope"));
        CHECK(h.take_sent().empty());
        require_closed(h, 4001, "protocol handshake: the peer sent error 3 (selection mismatch)");
    }
}
