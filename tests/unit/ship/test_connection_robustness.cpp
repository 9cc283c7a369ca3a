// ship::Connection, deadlines driven late or early, construction, and random input in every state.
// Exact bytes sent and exact close code and reason, on a virtual clock; TC_SHIP_* names where one applies.
#include "ship/connection.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace ship;
using namespace ship::test;
using Sent = std::vector<Bytes>;

TEST_CASE("a timer that was cancelled or replaced does nothing when it fires late", "[connection][timers]") {
    Harness h;
    to_data(h, Role::client);
    // The CMI, hello, protocol and PIN timers ran from this instant (all stopped long ago) and the access
    // methods one still runs: a wake-up past where the stopped ones were due does nothing.
    h.conn.handle_timeout(h.now + 10s);
    h.pump();
    require_open(h);
    CHECK(h.take_sent().empty());
    CHECK(h.conn.in_data_exchange());
    CHECK(h.deadline_in() == 60s);
}

TEST_CASE("the next deadline is absolute and runs from the now of the call that started it",
          "[connection][timers]") {
    Harness h;
    const TimePoint opened = h.now;
    CHECK_FALSE(h.conn.next_deadline()); // not opened: nothing runs
    h.open(Role::server);
    CHECK(h.conn.next_deadline() == opened + 10s); // CmiTimeout
    h.now += 3s;                                   // the owner's clock moved; no call, no change
    CHECK(h.conn.next_deadline() == opened + 10s);
    h.receive(vec("cmi"));
    CHECK(h.conn.next_deadline() == opened + 3s + 60s); // T_hello_init from the CMI's arrival
}

TEST_CASE("handle_timeout before the deadline does nothing", "[connection][timers]") {
    Harness h;
    to_hello(h, Role::client);
    const auto deadline = h.conn.next_deadline();
    REQUIRE(deadline);
    h.conn.handle_timeout(*deadline - 1ms);
    CHECK(h.conn.take_actions().empty());
    CHECK(h.conn.next_deadline() == deadline);
    h.conn.handle_timeout(*deadline);
    h.pump();
    CHECK(h.take_sent() == Sent{vec("hello-aborted")});
}

TEST_CASE("a late handle_timeout runs every timer that fell due, in deadline order", "[connection][timers]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    const TimePoint start = h.now;
    h.receive(vec("hello-ready")); // waiting 60000: ask at 30 s, the answer is due at 60 s
    // The owner oversleeps both: the request still goes out first, then the unanswered request aborts.
    h.now = start + 75s;
    h.conn.handle_timeout(h.now);
    h.pump();
    CHECK(h.take_sent() == Sent{vec("hello-prolongation-request"), vec("hello-aborted")});
    CHECK(h.last_error() == "hello: the peer did not answer our prolongation request");
    CHECK(h.conn.next_deadline() == start + 76s); // the close, 1 s after the abort was sent
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
                h.conn.deny(h.now);
                h.pump();
                break;
            case 4:
                if (next() % 4 == 0) h.conn.close("random close", h.now);
                if (next() % 4 == 0) h.conn.remove_trust(h.now);
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
