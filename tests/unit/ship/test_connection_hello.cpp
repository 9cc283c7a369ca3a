// ship::Connection, hello (SHIP 13.4.4.1): ready, pending, prolongation, abort and the user's trust decision.
// Exact bytes sent and exact close code and reason, on a virtual clock; TC_SHIP_* names where one applies.
#include "ship/connection.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace ship;
using namespace ship::test;
using Sent = std::vector<Bytes>;

TEST_CASE("TC_SHIP_HELLO_001: trusted server says ready, then waits for the client's announceMax",
          "[connection][hello]") {
    Harness h;
    h.open(Role::server);
    h.receive(vec("cmi"));
    CHECK(h.take_sent() == Sent{vec("cmi"), vec("hello-ready")});
    CHECK(h.last_state() == PeerState::in_progress);
    CHECK(h.deadline_in() == 60s);
    h.receive(vec("hello-ready"));
    CHECK(h.last_state() == PeerState::trusted);
    CHECK(h.take_sent().empty()); // a server never sends announceMax
    CHECK(h.conn.state_name() == "prot-h-server-listen-proposal");
    CHECK(h.deadline_in() == 10s); // the protocol handshake's Wait-Timer; T_hello (60 s) is gone
    h.receive(vec("protocol-announce-max"));
    CHECK(h.take_sent() == Sent{vec("protocol-select")});
}

TEST_CASE("TC_SHIP_HELLO_002: each prolongation adds T_hello_inc to the time left and reports it",
          "[connection][hello]") {
    Harness h;
    to_hello(h, Role::server);
    h.advance(45s);
    h.receive(vec("hello-prolongation-request"));
    CHECK(h.take_sent() == Sent{hello(R"([{"phase":"ready"},{"waiting":75000}])")});
    CHECK(h.deadline_in() == 75s);
    h.advance(60s); // 15 s left, as the lab expects at the end of each round
    require_open(h);
    CHECK(h.deadline_in() == 15s);
    h.receive(vec("hello-prolongation-request"));
    CHECK(h.take_sent() == Sent{hello(R"([{"phase":"ready"},{"waiting":75000}])")});
    h.advance(60s);
    h.receive(vec("hello-prolongation-request")); // a third is accepted as well
    CHECK(h.take_sent() == Sent{hello(R"([{"phase":"ready"},{"waiting":75000}])")});
    h.advance(60s);
    require_open(h);
    h.receive(vec("hello-ready"));
    CHECK(h.last_state() == PeerState::trusted);
    CHECK(h.conn.state_name() == "prot-h-server-listen-proposal");
}

// Hostile-suite finding: each request added T_hello_inc with no ceiling, so a burst of them bought days of a
// handshake slot. The time left after a grant is at most T_hello_init + T_hello_inc.
TEST_CASE("HELLO: a burst of prolongation requests never leaves more than 120 s", "[connection][hello]") {
    Harness h;
    to_hello(h, Role::server);
    for (int i = 0; i < 1000; ++i)
        h.receive(vec("hello-prolongation-request"));
    const Sent sent = h.take_sent();
    REQUIRE(sent.size() == 1000);
    CHECK(sent.back() == hello(R"([{"phase":"ready"},{"waiting":120000}])"));
    CHECK(h.deadline_in() == 120s);
    h.advance(121s); // hello aborted at 120 s, closed a second later (HELLO_003)
    CHECK(h.conn.closed());
}

TEST_CASE("HELLO: a granted prolongation is never announced below 30000 ms", "[connection][hello]") {
    auto config = trusted_config(own_id);
    config.timers.hello_inc = 5s;
    Harness h(config);
    to_hello(h, Role::server);
    h.advance(58s);
    h.receive(vec("hello-prolongation-request"));
    CHECK(h.take_sent() == Sent{hello(R"([{"phase":"ready"},{"waiting":30000}])")});
    CHECK(h.deadline_in() == 30s);
}

TEST_CASE("TC_SHIP_HELLO_003: silence past waiting: hello aborted, then close 4452 one second later",
          "[connection][hello]") {
    Harness h;
    h.open(Role::server);
    h.receive(vec("cmi"));
    CHECK(h.take_sent() == Sent{vec("cmi"), vec("hello-ready")}); // waiting 60000: within 58 000-240 000
    h.advance(59999ms);
    CHECK(h.take_sent().empty());
    h.advance(1ms);
    CHECK(h.take_sent() == Sent{vec("hello-aborted")});
    CHECK(h.last_state() == PeerState::error);
    CHECK(h.last_error() == "hello: the peer did not become ready before our announced deadline");
    CHECK(h.conn.state_name() == "hello-abort-done");
    require_open(h);
    h.advance(1s);
    require_closed(h, 4452, "Node rejected by application");
    CHECK(h.closed_reason == "hello: the peer did not become ready before our announced deadline");
}

TEST_CASE("TC_SHIP_HELLO_004: pending without prolongation request is ignored: no reply, same timer",
          "[connection][hello]") {
    Harness h;
    to_hello(h, Role::server);
    h.advance(5s);
    h.receive(hello(R"([{"phase":"pending"},{"waiting":120000}])"));
    CHECK(h.take_sent().empty());
    CHECK(h.deadline_in() == 55s);
    require_open(h);
    h.advance(30s);
    h.receive(vec("hello-ready"));
    CHECK(h.last_state() == PeerState::trusted);
    CHECK(h.conn.state_name() == "prot-h-server-listen-proposal");
}

TEST_CASE("HELLO: prolongationRequest false is treated like no request", "[connection][hello]") {
    Harness h;
    to_hello(h, Role::server);
    h.receive(hello(R"([{"phase":"pending"},{"prolongationRequest":false}])"));
    CHECK(h.take_sent().empty());
    CHECK(h.deadline_in() == 60s);
}

TEST_CASE("HELLO: the peer aborting while we wait ready means it denied trust", "[connection][hello]") {
    Harness h;
    to_hello(h, Role::client);
    h.receive(vec("hello-aborted"));
    CHECK(h.take_sent().empty());
    CHECK(h.last_state() == PeerState::remote_denied_trust);
    require_closed(h, 4452, "Node rejected by application");
}

TEST_CASE("HELLO: the transport closing while we wait ready means the peer denied trust",
          "[connection][hello]") {
    Harness h;
    to_hello(h, Role::client);
    h.conn.transport_closed("TLS EOF");
    h.pump();
    CHECK(h.last_state() == PeerState::remote_denied_trust);
    CHECK(h.last_error() == "the peer closed the connection (TLS EOF) while we waited ready for its trust");
    CHECK_FALSE(h.close); // nothing left to close
    CHECK(h.closed_count == 1);
    CHECK_FALSE(h.conn.next_deadline());
}

TEST_CASE("HELLO: untrusted peer without waiting for trust: abort right after CMI", "[connection][hello]") {
    auto config = trusted_config(own_id);
    config.peer_trusted = false;
    Harness h(config);
    h.open(Role::server);
    h.receive(vec("cmi"));
    CHECK(h.take_sent() == Sent{vec("cmi"), vec("hello-aborted")});
    CHECK(h.last_error() == "hello: the peer is not trusted and waiting for trust is off");
    h.advance(1s);
    require_closed(h, 4452, "Node rejected by application");
}

TEST_CASE("HELLO pending: we announce pending and wait for the user's decision", "[connection][hello]") {
    Harness h(pending_config());
    h.open(Role::server);
    h.receive(vec("cmi"));
    CHECK(h.take_sent() == Sent{vec("cmi"), vec("hello-pending")});
    CHECK(h.last_state() == PeerState::received_pairing_request);
    CHECK(h.conn.awaiting_trust());
    CHECK(h.conn.state_name() == "hello-pending-listen");
    CHECK(h.deadline_in() == 60s);
}

TEST_CASE("HELLO pending: we ask the ready peer for more time 30 s before its deadline",
          "[connection][hello]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    h.receive(vec("hello-ready")); // waiting 60000
    CHECK(h.take_sent().empty());
    CHECK(h.deadline_in() == 30s);
    h.advance(29999ms);
    CHECK(h.take_sent().empty());
    h.advance(1ms);
    CHECK(h.take_sent() == Sent{vec("hello-prolongation-request")});
    CHECK(h.deadline_in() == 30s); // the answer is due by the peer's deadline
    h.advance(10s);
    h.receive(hello(R"([{"phase":"ready"},{"waiting":80000}])"));
    // Neither the answered request's deadline (20 s) nor our own T_hello (20 s: the peer is ready, we wait
    // for our user) is left: only the next request, 30 s before the peer's new deadline.
    CHECK(h.deadline_in() == 50s);
    h.advance(50s);
    CHECK(h.take_sent() == Sent{vec("hello-prolongation-request")});
    require_open(h);
}

TEST_CASE("HELLO pending: the peer's deadline sets when we ask, by T_hello_prolong thresholds",
          "[connection][hello]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    SECTION("waiting 20 s: ask 15 s before (waiting gap)") {
        h.receive(hello(R"([{"phase":"ready"},{"waiting":20000}])"));
        CHECK(h.deadline_in() == 5s);
        h.advance(5s);
        CHECK(h.deadline_in() == 15s);
    }
    SECTION("waiting 10 s: ask 1 s before") {
        h.receive(hello(R"([{"phase":"ready"},{"waiting":10000}])"));
        CHECK(h.deadline_in() == 9s);
    }
    SECTION("waiting below T_hello_prolong_min: abort") {
        h.receive(hello(R"([{"phase":"ready"},{"waiting":999}])"));
        CHECK(h.take_sent() == Sent{vec("hello-aborted")});
        CHECK(h.last_error() == "hello: the peer announced waiting 999 ms, below T_hello_prolong_min");
        h.advance(1s);
        require_closed(h, 4452, "Node rejected by application");
    }
    SECTION("ready without waiting: our own deadline still bounds the wait") {
        h.receive(hello(R"([{"phase":"ready"}])"));
        CHECK(h.deadline_in() == 60s);
        h.advance(60s);
        CHECK(h.take_sent() == Sent{vec("hello-aborted")}); // no prolongation request came before
    }
    SECTION("ready with waiting, then ready without: our own deadline bounds the wait again") {
        // Found by tests/fuzz (fuzz_connection): no timer was left armed, so the wait had no end.
        h.receive(vec("hello-ready"));
        CHECK(h.deadline_in() == 30s); // our prolongation request, not our own T_hello
        h.advance(10s);
        h.receive(hello(R"([{"phase":"ready"}])"));
        CHECK(h.deadline_in() == 60s); // the request (20 s left) is off; T_hello runs again
        h.advance(60s);
        CHECK(h.take_sent() == Sent{vec("hello-aborted")});
        CHECK(h.last_error() == "hello: the peer did not become ready before our announced deadline");
    }
    SECTION("a waiting beyond the schema's unsignedInt is cut to 2^32-1 ms") {
        h.receive(hello(R"([{"phase":"ready"},{"waiting":18446744073709551615}])"));
        CHECK(h.deadline_in() == Duration(4294967295LL - 30000));
    }
    SECTION("the peer also pending, with waiting: we ask before its deadline too") {
        h.receive(hello(R"([{"phase":"pending"},{"waiting":60000}])"));
        CHECK(h.deadline_in() == 30s);
        h.advance(30s);
        CHECK(h.take_sent() == Sent{vec("hello-prolongation-request")});
        h.advance(10s);
        h.receive(hello(R"([{"phase":"pending"},{"waiting":60000}])"));
        CHECK(h.deadline_in() == 20s); // our T_hello (60 s from hello) still runs: it is not ready
        h.advance(20s);
        CHECK(h.take_sent() == Sent{vec("hello-aborted")});
        CHECK(h.last_error() == "hello: the peer did not become ready before our announced deadline");
    }
}

TEST_CASE("HELLO pending: an unanswered prolongation request aborts at the peer's deadline",
          "[connection][hello]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    h.receive(vec("hello-ready"));
    h.advance(30s);
    CHECK(h.take_sent() == Sent{vec("hello-prolongation-request")});
    h.advance(30s);
    CHECK(h.take_sent() == Sent{vec("hello-aborted")});
    CHECK(h.last_error() == "hello: the peer did not answer our prolongation request");
    h.advance(1s);
    require_closed(h, 4452, "Node rejected by application");
}

TEST_CASE("HELLO pending: approve after the peer is ready leaves hello at once", "[connection][hello]") {
    Harness h(pending_config());
    to_hello(h, Role::client);
    h.receive(vec("hello-ready"));
    h.advance(20s);
    h.approve();
    CHECK(h.take_sent() == Sent{vec("hello-ready"), vec("protocol-announce-max")});
    CHECK(h.last_state() == PeerState::trusted);
    CHECK_FALSE(h.conn.awaiting_trust());
    CHECK(h.deadline_in() == 10s); // the Wait-Timer; the prolongation request (10 s left) is off
    h.advance(10s);
    CHECK(h.take_sent() == Sent{vec("protocol-error-spec-envelope")});
}

TEST_CASE("HELLO pending: approve before the peer is ready waits for it as ready", "[connection][hello]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    h.receive(hello(R"([{"phase":"pending"},{"waiting":60000}])"));
    h.advance(10s);
    h.approve();
    CHECK(h.take_sent() == Sent{vec("hello-ready")});
    CHECK(h.last_state() == PeerState::in_progress);
    CHECK(h.conn.state_name() == "hello-ready-listen");
    CHECK(h.deadline_in() == 60s); // T_hello again; the prolongation request (20 s left) is off
    h.receive(vec("hello-ready"));
    CHECK(h.last_state() == PeerState::trusted);
}

TEST_CASE("HELLO pending: both pending, the peer's prolongation request extends our timer",
          "[connection][hello]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    h.advance(50s);
    h.receive(vec("hello-prolongation-request"));
    CHECK(h.take_sent() == Sent{hello(R"([{"phase":"pending"},{"waiting":70000}])")});
    CHECK(h.deadline_in() == 70s);
}

TEST_CASE("HELLO pending: deny sends aborted and closes 4452", "[connection][hello]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    h.conn.deny(h.now);
    h.pump();
    CHECK(h.take_sent() == Sent{vec("hello-aborted")});
    CHECK(h.last_state() == PeerState::error);
    CHECK(h.last_error() == "hello: trust denied by the user");
    h.advance(999ms);
    require_open(h);
    h.advance(1ms);
    require_closed(h, 4452, "Node rejected by application");
}

TEST_CASE("HELLO pending: our own deadline passes while the peer stays pending", "[connection][hello]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    h.advance(60s);
    CHECK(h.take_sent() == Sent{vec("hello-aborted")});
    CHECK(h.last_error() == "hello: the peer did not become ready before our announced deadline");
}

TEST_CASE("HELLO pending: the peer aborting means it denied trust; a transport close is an error",
          "[connection][hello]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    SECTION("aborted") {
        h.receive(vec("hello-aborted"));
        CHECK(h.last_state() == PeerState::remote_denied_trust);
        require_closed(h, 4452, "Node rejected by application");
    }
    SECTION("transport closed") {
        h.conn.transport_closed("peer went away");
        h.pump();
        CHECK(h.last_state() == PeerState::error);
        CHECK(h.last_error() == "the peer closed the connection (peer went away) in hello-pending-listen");
        CHECK(h.closed_count == 1);
    }
}

TEST_CASE("HELLO: approve and deny outside pending change nothing", "[connection][hello]") {
    Harness h;
    to_protocol(h, Role::server);
    const auto before = h.log.size();
    h.approve();
    h.conn.deny(h.now);
    h.pump();
    CHECK(h.log.size() == before);
}

TEST_CASE("HELLO: anything but a valid hello aborts hello with a precise reason",
          "[connection][hello][msg]") {
    struct Case {
        Bytes input;
        std::string error;
    };
    const std::vector<Case> cases{
        {vec("access-methods-request"), "hello: unexpected accessMethodsRequest while waiting for hello"},
        {vec("protocol-announce-max"), "hello: unexpected messageProtocolHandshake while waiting for hello"},
        {Bytes{0x02}, "hello: message shorter than 2 bytes"},
        {Bytes{0xFF, 0x00}, "hello: unknown SHIP message type byte 255"},
        {control(R"({"connectionHello":[{"phase":"ready"})"),
         "hello: invalid JSON at offset 37: Missing a comma or "
         "']' after an array element."},
        {control(R"({"connectionHello":[{"phase":"maybe"}]})"),
         "hello: connectionHello: 'phase' has the unknown value 'maybe'"},
        {make_frame(MessageType::data, R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{}}]})"),
         "hello: unexpected data while waiting for hello"},
    };
    for (const auto role : {Role::client, Role::server}) {
        for (const auto& c : cases) {
            INFO(c.error);
            Harness h;
            to_hello(h, role);
            h.receive(c.input);
            CHECK(h.take_sent() == Sent{vec("hello-aborted")});
            CHECK(h.last_error() == c.error);
            h.advance(1s);
            require_closed(h, 4452, "Node rejected by application");
        }
    }
}

TEST_CASE("HELLO: input after our abort is ignored; the close still comes after 1 s", "[connection][hello]") {
    Harness h;
    to_hello(h, Role::server);
    h.conn.deny(h.now);
    h.pump();
    h.take_sent();
    h.receive(vec("hello-ready"));
    h.receive(vec("access-methods-request"));
    CHECK(h.take_sent().empty());
    h.advance(1s);
    require_closed(h, 4452, "Node rejected by application");
}
