// Every SME path of ship::Connection with a virtual clock: exact bytes sent, exact close code and reason.
// Test names carry the TC_SHIP_* case of the SHIP test specification where one applies.
#include "ship/connection.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace ship;
using ship::test::Harness;
using ship::test::hello;
using ship::test::pending_config;
using ship::test::trusted_config;
using ship::test::vec;
using Sent = std::vector<Bytes>;

namespace {

const std::string own_id = "Demo-HEMS-123456789";

Bytes control(std::string_view json) {
    return make_frame(MessageType::control, json);
}
Bytes access_methods(std::string_view id) {
    return control(std::string(R"({"accessMethods":[{"id":")") + std::string(id) + R"("}]})");
}
Bytes own_access_methods() {
    return access_methods(own_id);
}
Bytes handshake_error(int n) {
    return control(R"({"messageProtocolHandshakeError":[{"error":)" + std::to_string(n) + "}]}");
}
Bytes select_version(int major, int minor) {
    return control(R"({"messageProtocolHandshake":[{"handshakeType":"select"},{"version":[{"major":)" +
                   std::to_string(major) + R"(},{"minor":)" + std::to_string(minor) +
                   R"(}]},{"formats":[{"format":["JSON-UTF8"]}]}]})");
}

// After CMI; the hello we sent is consumed.
void to_hello(Harness& h, Role role) {
    h.open(role);
    h.receive(vec("cmi"));
    h.take_sent();
}

// In the protocol handshake, nothing unconsumed.
void to_protocol(Harness& h, Role role) {
    to_hello(h, role);
    h.receive(vec("hello-ready"));
    h.take_sent();
}

void to_pin(Harness& h, Role role) {
    to_protocol(h, role);
    if (role == Role::server) h.receive(vec("protocol-announce-max"));
    h.receive(vec("protocol-select"));
    h.take_sent();
}

void to_data(Harness& h, Role role) {
    to_pin(h, role);
    h.receive(vec("pin-none"));
    h.take_sent();
    REQUIRE(h.conn.in_data_exchange());
}

void require_closed(const Harness& h, std::uint16_t code, const std::string& reason) {
    REQUIRE(h.close);
    CHECK(h.close->code == code);
    CHECK(h.close->reason == reason);
    CHECK(h.closed_count == 1);
    CHECK(h.timers.empty());
    CHECK_FALSE(h.acted_after_closed);
    CHECK(h.conn.closed());
    CHECK(h.conn.state_name() == "closed");
}

void require_open(const Harness& h) {
    CHECK_FALSE(h.close);
    CHECK(h.closed_count == 0);
}

} // namespace

// ---- CMI ------------------------------------------------------------------------------------------------

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
    CHECK_FALSE(h.timers.contains(TimerKind::cmi));
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
    h.open(Role::server);
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

// ---- hello ----------------------------------------------------------------------------------------------

TEST_CASE("TC_SHIP_HELLO_001: trusted server says ready, then waits for the client's announceMax",
          "[connection][hello]") {
    Harness h;
    h.open(Role::server);
    h.receive(vec("cmi"));
    CHECK(h.take_sent() == Sent{vec("cmi"), vec("hello-ready")});
    CHECK(h.last_state() == PeerState::in_progress);
    CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 60s);
    h.receive(vec("hello-ready"));
    CHECK(h.last_state() == PeerState::trusted);
    CHECK(h.take_sent().empty()); // a server never sends announceMax
    CHECK(h.conn.state_name() == "prot-h-server-listen-proposal");
    CHECK_FALSE(h.timers.contains(TimerKind::hello_wait_for_ready));
    CHECK(h.timer_left(TimerKind::protocol_handshake) == 10s);
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
    CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 75s);
    h.advance(60s); // 15 s left, as the lab expects at the end of each round
    require_open(h);
    CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 15s);
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
    CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 120s);
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
    CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 30s);
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
    CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 55s);
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
    CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 60s);
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
    CHECK(h.timers.empty());
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
    CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 60s);
}

TEST_CASE("HELLO pending: we ask the ready peer for more time 30 s before its deadline",
          "[connection][hello]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    h.receive(vec("hello-ready")); // waiting 60000
    CHECK(h.take_sent().empty());
    CHECK_FALSE(
        h.timers.contains(TimerKind::hello_wait_for_ready)); // the peer is ready; we wait for our user
    CHECK(h.timer_left(TimerKind::hello_send_prolongation) == 30s);
    h.advance(30s);
    CHECK(h.take_sent() == Sent{vec("hello-prolongation-request")});
    CHECK(h.timer_left(TimerKind::hello_prolongation_reply) == 30s);
    h.advance(10s);
    h.receive(hello(R"([{"phase":"ready"},{"waiting":80000}])"));
    CHECK_FALSE(h.timers.contains(TimerKind::hello_prolongation_reply));
    CHECK(h.timer_left(TimerKind::hello_send_prolongation) == 50s);
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
        CHECK(h.timer_left(TimerKind::hello_send_prolongation) == 5s);
        h.advance(5s);
        CHECK(h.timer_left(TimerKind::hello_prolongation_reply) == 15s);
    }
    SECTION("waiting 10 s: ask 1 s before") {
        h.receive(hello(R"([{"phase":"ready"},{"waiting":10000}])"));
        CHECK(h.timer_left(TimerKind::hello_send_prolongation) == 9s);
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
        CHECK_FALSE(h.timers.contains(TimerKind::hello_send_prolongation));
        CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 60s);
        h.advance(60s);
        CHECK(h.take_sent() == Sent{vec("hello-aborted")});
    }
    SECTION("ready with waiting, then ready without: our own deadline bounds the wait again") {
        // Found by tests/fuzz (fuzz_connection): no timer was left armed, so the wait had no end.
        h.receive(vec("hello-ready"));
        CHECK_FALSE(h.timers.contains(TimerKind::hello_wait_for_ready));
        h.advance(10s);
        h.receive(hello(R"([{"phase":"ready"}])"));
        CHECK_FALSE(h.timers.contains(TimerKind::hello_send_prolongation));
        CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 60s);
        h.advance(60s);
        CHECK(h.take_sent() == Sent{vec("hello-aborted")});
        CHECK(h.last_error() == "hello: the peer did not become ready before our announced deadline");
    }
    SECTION("a waiting beyond the schema's unsignedInt is cut to 2^32-1 ms") {
        h.receive(hello(R"([{"phase":"ready"},{"waiting":18446744073709551615}])"));
        CHECK(h.timer_left(TimerKind::hello_send_prolongation) == Duration(4294967295LL - 30000));
    }
    SECTION("the peer also pending, with waiting: we ask before its deadline too") {
        h.receive(hello(R"([{"phase":"pending"},{"waiting":60000}])"));
        CHECK(h.timer_left(TimerKind::hello_send_prolongation) == 30s);
        CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 60s); // still waiting for it to be ready
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
    CHECK_FALSE(h.timers.contains(TimerKind::hello_send_prolongation));
    CHECK(h.timer_left(TimerKind::protocol_handshake) == 10s);
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
    CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 60s);
    CHECK_FALSE(h.timers.contains(TimerKind::hello_send_prolongation));
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
    CHECK(h.timer_left(TimerKind::hello_wait_for_ready) == 70s);
}

TEST_CASE("HELLO pending: deny sends aborted and closes 4452", "[connection][hello]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    h.conn.deny();
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
    h.conn.deny();
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
    h.conn.deny();
    h.pump();
    h.take_sent();
    h.receive(vec("hello-ready"));
    h.receive(vec("access-methods-request"));
    CHECK(h.take_sent().empty());
    h.advance(1s);
    require_closed(h, 4452, "Node rejected by application");
}

// ---- protocol handshake ---------------------------------------------------------------------------------

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
    CHECK(h.timer_left(TimerKind::protocol_handshake) == 10s);
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

// ---- PIN ------------------------------------------------------------------------------------------------

TEST_CASE("TC_SHIP_PIN_001: pin none both ways reaches data exchange; our access methods request goes first",
          "[connection][pin]") {
    for (const auto role : {Role::client, Role::server}) {
        Harness h;
        to_pin(h, role);
        CHECK(h.timer_left(TimerKind::pin) == 10s);
        h.receive(vec("pin-none"));
        CHECK(h.take_sent() == Sent{vec("access-methods-request")});
        CHECK(h.last_state() == PeerState::completed);
        CHECK(h.completed == 1);
        CHECK(h.conn.in_data_exchange());
        CHECK(h.conn.state_name() == "data-exchange");
        CHECK(h.timer_left(TimerKind::access_methods) == 60s);
        CHECK_FALSE(h.timers.contains(TimerKind::pin));
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

// ---- access methods and data ------------------------------------------------------------------------------

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
    CHECK_FALSE(h.timers.contains(TimerKind::access_methods));
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

TEST_CASE("DATA: send_data converts plain JSON to the EEBUS data message", "[connection][data]") {
    Harness h;
    const std::string plain = R"({"datagram":{"header":{"msgCounter":1},"payload":{"cmd":[{"x":{}}]}}})";
    CHECK(h.conn.send_data(plain) == "not in data exchange (state idle)");
    to_data(h, Role::client);
    CHECK(h.conn.send_data(plain) == std::nullopt);
    h.pump();
    CHECK(
        h.take_sent() ==
        Sent{make_frame(
            MessageType::data,
            R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[{"header":[{"msgCounter":1}]},{"payload":[{"cmd":[[{"x":[]}]]}]}]}}]})")});
    CHECK(h.conn.send_data("[1]") == "the data payload must be a JSON object");
    CHECK(h.conn.send_data("{").value().starts_with("invalid JSON"));
}

TEST_CASE("DATA: data with another protocolId or a non-object payload is dropped with a notice",
          "[connection][data]") {
    Harness h;
    to_data(h, Role::client);
    h.receive(
        make_frame(MessageType::data, R"({"data":[{"header":[{"protocolId":"ee2.0"}]},{"payload":{}}]})"));
    h.receive(
        make_frame(MessageType::data, R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":5}]})"));
    CHECK(h.data.empty());
    CHECK(h.notices == std::vector<std::string>{"data: ignored a message with protocolId 'ee2.0'",
                                                "data: ignored a message whose payload is not an object"});
    require_open(h);
}

TEST_CASE("DATA: a payload number too large for a double is dropped, never delivered cut off",
          "[connection][data][fuzz]") {
    // Found by tests/fuzz: the application received the truncated text {"datagram":{"x":
    Harness h;
    to_data(h, Role::client);
    h.receive(make_frame(
        MessageType::data,
        R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[{"x":2e308}]}}]})"));
    CHECK(h.data.empty());
    CHECK(h.notices == std::vector<std::string>{
                           "ignored a bad message in data-exchange: a number in the JSON is too large for "
                           "a double"});
    require_open(h);
}

// ---- malformed input in data exchange
// -----------------------------------------------------------------------

TEST_CASE("TC_SHIP_MSG_001: a bare type byte is dropped and the link keeps working", "[connection][msg]") {
    Harness h;
    to_data(h, Role::server);
    h.receive(Bytes{0x02});
    CHECK(h.notices.back() == "ignored a bad message in data-exchange: message shorter than 2 bytes");
    h.receive(vec("access-methods-request"));
    CHECK(h.take_sent() == Sent{own_access_methods()});
    require_open(h);
}

TEST_CASE("TC_SHIP_MSG_002: an unknown type byte is dropped and never acted on", "[connection][msg]") {
    Harness h;
    to_data(h, Role::client);
    h.receive(Bytes{0xFF, 0x01});
    CHECK(h.notices.back() == "ignored a bad message in data-exchange: unknown SHIP message type byte 255");
    CHECK(h.take_sent().empty());
    h.receive(vec("access-methods-request"));
    CHECK(h.take_sent() == Sent{own_access_methods()});
    require_open(h);
}

TEST_CASE("TC_SHIP_MSG_003: a request with whitespace everywhere is answered", "[connection][msg]") {
    Harness h;
    to_data(h, Role::client);
    h.receive(control(" \t\r\n{ \t\r\n\"accessMethodsRequest\" \t\r\n: \t\r\n[ \t\r\n] \t\r\n} \t\r\n"));
    CHECK(h.take_sent() == Sent{own_access_methods()});
}

TEST_CASE("MSG: invalid JSON, unknown messages and stray handshake messages in data exchange are ignored",
          "[connection][msg]") {
    Harness h;
    to_data(h, Role::client);
    h.receive(control("{\"accessMethodsRequest\":"));
    h.receive(control(R"({"somethingNew":[]})"));
    h.receive(vec("hello-ready"));
    h.receive(vec("pin-none"));
    h.receive(control(std::string(100000, '[')));
    CHECK(h.notices ==
          std::vector<std::string>{
              "ignored a bad message in data-exchange: invalid JSON at offset 24: Invalid value.",
              "ignored a bad message in data-exchange: unknown message 'somethingNew'",
              "data exchange: ignored connectionHello",
              "data exchange: ignored connectionPinState",
              "ignored a bad message in data-exchange: JSON nested deeper than 64 levels (at offset 64)",
          });
    CHECK(h.take_sent().empty());
    require_open(h);
    CHECK(h.conn.in_data_exchange());
}

// ---- close ------------------------------------------------------------------------------------------------

TEST_CASE("TERM: user close in data exchange announces, and closes 4001 on the confirm",
          "[connection][term]") {
    Harness h;
    to_data(h, Role::client);
    h.conn.close("user disconnect");
    h.pump();
    CHECK(h.take_sent() == Sent{vec("close-announce")});
    CHECK(h.conn.state_name() == "close-wait-confirm");
    CHECK(h.timer_left(TimerKind::close) == 500ms);
    CHECK_FALSE(h.conn.in_data_exchange());
    CHECK(h.conn.send_data("{}") == "not in data exchange (state close-wait-confirm)");
    h.receive(vec("access-methods-request")); // still answered while closing
    CHECK(h.take_sent() == Sent{own_access_methods()});
    h.receive(vec("close-confirm"));
    require_closed(h, 4001, "user disconnect");
    CHECK(h.closed_reason == "user disconnect");
}

TEST_CASE("TC_SHIP_TERM_001: removing trust announces removedConnection and closes by maxTime unconfirmed",
          "[connection][term]") {
    Harness h;
    to_data(h, Role::server);
    h.conn.remove_trust();
    h.pump();
    CHECK(
        h.take_sent() ==
        Sent{make_frame(
            MessageType::end,
            R"({"connectionClose":[{"phase":"announce"},{"maxTime":500},{"reason":"removedConnection"}]})")});
    h.advance(499ms);
    require_open(h);
    h.advance(1ms);
    require_closed(h, 4001, "trust removed");
}

TEST_CASE("TERM: the peer's announce is confirmed and the link closed", "[connection][term]") {
    Harness h;
    to_data(h, Role::server);
    h.receive(
        make_frame(MessageType::end,
                   R"({"connectionClose":[{"phase":"announce"},{"maxTime":500},{"reason":"User close"}]})"));
    CHECK(h.take_sent() == Sent{vec("close-confirm")});
    require_closed(h, 4001, "connection closed by the peer (User close)");
    CHECK(h.last_state() == PeerState::completed); // a normal end is no error
}

TEST_CASE("TERM: both sides announce at once: confirm theirs and close", "[connection][term]") {
    Harness h;
    to_data(h, Role::client);
    h.conn.close("bye");
    h.pump();
    h.take_sent();
    h.receive(vec("close-announce"));
    CHECK(h.take_sent() == Sent{vec("close-confirm")});
    require_closed(h, 4001, "connection closed by the peer (unspecific)");
}

TEST_CASE("TERM: a confirm we did not ask for is ignored", "[connection][term]") {
    Harness h;
    to_data(h, Role::client);
    h.receive(vec("close-confirm"));
    CHECK(h.notices.back() == "connectionClose confirm ignored: we announced no close");
    require_open(h);
}

TEST_CASE("TERM: before data exchange close is immediate: 4001 with the reason, 4500 on trust removal",
          "[connection][term]") {
    SECTION("close") {
        Harness h;
        to_protocol(h, Role::client);
        h.conn.close("shutting down");
        h.pump();
        CHECK(h.take_sent().empty());
        require_closed(h, 4001, "shutting down");
    }
    SECTION("remove trust") {
        Harness h;
        to_hello(h, Role::server);
        h.conn.remove_trust();
        h.pump();
        require_closed(h, 4500, "trust removed");
    }
    SECTION("the peer announces a close during the handshake") {
        Harness h;
        to_pin(h, Role::server);
        h.receive(vec("close-announce"));
        CHECK(h.take_sent() == Sent{vec("close-confirm")});
        require_closed(h, 4001, "connection closed by the peer (unspecific)");
        CHECK(h.last_error() == "connection closed by the peer (unspecific) in pin-check-listen");
    }
}

TEST_CASE("TERM: the close reason is cut to 123 bytes on a UTF-8 boundary", "[connection][term]") {
    Harness h;
    to_hello(h, Role::client);
    std::string reason;
    for (int i = 0; i < 100; ++i)
        reason += "\xC3\xA4"; // ä, 2 bytes
    h.conn.close(reason);
    h.pump();
    REQUIRE(h.close);
    CHECK(h.close->reason.size() == 122);
    CHECK(is_valid_utf8(h.close->reason));
    CHECK(h.closed_reason == reason);
}

TEST_CASE("TERM: after Closed nothing more happens", "[connection][term]") {
    Harness h;
    to_data(h, Role::client);
    h.conn.transport_closed("gone");
    h.pump();
    CHECK(h.closed_count == 1);
    CHECK(h.closed_reason == "the peer closed the connection (gone)");
    CHECK(h.timers.empty());
    h.receive(vec("access-methods-request"));
    h.conn.close("again");
    h.conn.remove_trust();
    h.conn.transport_closed("again");
    h.conn.timer_fired(TimerKind::access_methods, h.now);
    h.pump();
    CHECK(h.closed_count == 1);
    CHECK_FALSE(h.acted_after_closed);
}

// ---- timers and construction
// --------------------------------------------------------------------------------

TEST_CASE("a timer that was cancelled or replaced does nothing when it fires late", "[connection][timers]") {
    Harness h;
    to_data(h, Role::client);
    h.conn.timer_fired(TimerKind::cmi, h.now);
    h.conn.timer_fired(TimerKind::protocol_handshake, h.now);
    h.conn.timer_fired(TimerKind::close, h.now);
    h.pump();
    require_open(h);
    CHECK(h.conn.in_data_exchange());
}

TEST_CASE("a SHIP ID that a control message cannot carry is refused at construction", "[connection]") {
    auto config = trusted_config("");
    CHECK_THROWS_AS(Connection(config), std::invalid_argument);
    config.own_ship_id = "bad[{id";
    CHECK_THROWS_AS(Connection(config), std::invalid_argument);
    config.own_ship_id = "my-datagram-device";
    CHECK_THROWS_AS(Connection(config), std::invalid_argument);
}

TEST_CASE("random input in every state never throws and ends at most once", "[connection][robustness]") {
    std::uint32_t seed = 12345;
    auto next = [&seed] {
        seed = seed * 1664525U + 1013904223U;
        return seed >> 8;
    };
    const std::vector<Bytes> pieces{vec("cmi"),
                                    vec("hello-ready"),
                                    vec("hello-pending"),
                                    vec("hello-prolongation-request"),
                                    vec("hello-aborted"),
                                    vec("protocol-announce-max"),
                                    vec("protocol-select"),
                                    vec("protocol-error-spec-envelope"),
                                    vec("pin-none"),
                                    vec("access-methods-request"),
                                    vec("access-methods"),
                                    vec("close-announce"),
                                    vec("close-confirm"),
                                    Bytes{0x02},
                                    Bytes{0xFF, 0x00},
                                    Bytes{0x01, '[', ']'}};
    for (int run = 0; run < 2000; ++run) {
        auto config = trusted_config(own_id);
        config.peer_trusted = next() % 2;
        config.allow_waiting_for_trust = next() % 2;
        Harness h(config);
        h.open(next() % 2 ? Role::client : Role::server);
        for (int step = 0; step < 12 && h.closed_count == 0; ++step) {
            switch (next() % 10) {
            case 0: {
                Bytes junk(next() % 12);
                for (auto& b : junk)
                    b = static_cast<std::uint8_t>(next());
                h.receive(junk);
                break;
            }
            case 1:
                h.advance(Duration(next() % 70000));
                break;
            case 2:
                h.approve();
                break;
            case 3:
                h.conn.deny();
                h.pump();
                break;
            case 4:
                if (next() % 4 == 0) h.conn.close("random close");
                if (next() % 4 == 0) h.conn.remove_trust();
                if (next() % 8 == 0) h.conn.transport_closed("random end");
                (void)h.conn.send_data(R"({"datagram":{}})");
                h.pump();
                break;
            default:
                h.receive(pieces[next() % pieces.size()]);
            }
        }
        CHECK(h.closed_count <= 1);
        CHECK_FALSE(h.acted_after_closed);
    }
}
