// ship::Connection, connection termination (SHIP 13.4.7): announce, confirm, maxTime and early closes.
// Exact bytes sent and exact close code and reason, on a virtual clock; TC_SHIP_* names where one applies.
#include "ship/connection.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace ship;
using namespace ship::test;
using Sent = std::vector<Bytes>;

TEST_CASE("TERM: user close in data exchange announces, and closes 4001 on the confirm",
          "[connection][term]") {
    Harness h;
    to_data(h, Role::client);
    h.conn.close("user disconnect", h.now);
    h.pump();
    CHECK(h.take_sent() == Sent{vec("close-announce")});
    CHECK(h.conn.state_name() == "close-wait-confirm");
    CHECK(h.deadline_in() == 500ms);
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
    h.conn.remove_trust(h.now);
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

// SHIP 13.4.7: whoever announced waits for the confirm (or maxTime) before the WebSocket close, also when
// the peer announced at the same moment (two nodes dropping the same link). Closing on their announce put
// our announce and our 4001 on the wire in the same instant.
TEST_CASE("TERM: both sides announce at once: confirm theirs, close on the confirm of ours",
          "[connection][term]") {
    Harness h;
    to_data(h, Role::client);
    h.conn.close("bye", h.now);
    h.pump();
    h.take_sent();
    h.advance(100ms);
    h.receive(vec("close-announce"));
    CHECK(h.take_sent() == Sent{vec("close-confirm")});
    require_open(h);
    CHECK(h.deadline_in() == 400ms); // still our maxTime, from our announce
    h.advance(50ms);
    require_open(h);
    h.receive(vec("close-confirm"));
    require_closed(h, 4001, "bye");
}

TEST_CASE("TERM: both sides announce at once and ours is never confirmed: closed at maxTime",
          "[connection][term]") {
    Harness h;
    to_data(h, Role::server);
    h.conn.close("bye", h.now);
    h.pump();
    h.take_sent();
    h.receive(vec("close-announce"));
    CHECK(h.take_sent() == Sent{vec("close-confirm")});
    h.advance(499ms);
    require_open(h);
    h.advance(1ms);
    require_closed(h, 4001, "bye");
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
        h.conn.close("shutting down", h.now);
        h.pump();
        CHECK(h.take_sent().empty());
        require_closed(h, 4001, "shutting down");
    }
    SECTION("remove trust") {
        Harness h;
        to_hello(h, Role::server);
        h.conn.remove_trust(h.now);
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
    h.conn.close(reason, h.now);
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
    CHECK_FALSE(h.conn.next_deadline());
    h.receive(vec("access-methods-request"));
    h.conn.close("again", h.now);
    h.conn.remove_trust(h.now);
    h.conn.transport_closed("again");
    h.conn.handle_timeout(h.now + 60s); // where the access-methods deadline was
    h.pump();
    CHECK(h.closed_count == 1);
    CHECK_FALSE(h.acted_after_closed);
}
