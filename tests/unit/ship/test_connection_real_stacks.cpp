// ship::Connection against scripted peers that behave as real stacks do on the wire (OpenEEBUS on NIBE heat
// pumps), through whole pairings on a virtual clock: where they leave the spec, shipd must still pair.
#include "ship/connection.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"
#include "ship/messages.hpp"

using namespace std::chrono_literals;
using namespace ship;
using namespace ship::test;
using Sent = std::vector<Bytes>;

namespace {

// OpenEEBUS (NIBEGroup/openeebus, in NIBE heat pumps) as the trusting side, i.e. the peer that is ready while
// we wait for our user. What it does that the spec does not:
//  - it answers our `pending` + prolongationRequest by echoing OUR phase back: {"phase":"pending"} with
//    {"waiting": its time left + 60000} and no prolongationRequest (the spec's ready side answers `ready`);
//  - `early_handshake()`: the message-protocol handshake arriving while we are still pending (as a client
//    it sends announceMax), after which it answers no more hello messages.
// Otherwise it is a plain SHIP node: after our `ready` it runs the protocol handshake (announceMax as client,
// select as server), PIN none, and access methods with the id Demo-EVSE-234567890.
class OpenEebusPeer {
public:
    OpenEebusPeer(Role role, TimePoint now)
        : role_(role)
        , deadline_(now + 60s) {}

    // Its hello right after CMI: ready, waiting 60000.
    Bytes first_hello() const { return vec("hello-ready"); }

    std::vector<Bytes> early_handshake() {
        left_hello_ = true;
        if (role_ != Role::client) return {};
        announced_ = true;
        return {vec("protocol-announce-max")};
    }
    // From now on it ignores hello messages (a device that stopped answering).
    void go_silent() { silent_ = true; }

    std::vector<Bytes> react(const Bytes& from_us, TimePoint now) {
        const auto frame = parse_frame(from_us);
        REQUIRE(std::holds_alternative<Frame>(frame));
        const auto decoded = msg::decode(std::get<Frame>(frame));
        REQUIRE(std::holds_alternative<msg::Message>(decoded));
        const auto& m = std::get<msg::Message>(decoded);
        if (const auto* h = std::get_if<msg::ConnectionHello>(&m)) return on_hello(*h, now);
        if (const auto* p = std::get_if<msg::MessageProtocolHandshake>(&m)) {
            if (p->type == msg::HandshakeType::announce_max) return {vec("protocol-select")};
            // As client our select is the server's choice: confirm it, then PIN. As server it is the echo.
            if (role_ == Role::client) return {vec("protocol-select"), vec("pin-none")};
            return {vec("pin-none")};
        }
        if (std::holds_alternative<msg::ConnectionPinState>(m)) return {vec("access-methods-request")};
        if (std::holds_alternative<msg::AccessMethodsRequest>(m)) return {vec("access-methods")};
        return {};
    }

    int prolongations_answered = 0;
    bool saw_abort = false;
    TimePoint deadline() const { return deadline_; }

private:
    std::vector<Bytes> on_hello(const msg::ConnectionHello& h, TimePoint now) {
        if (h.phase == msg::HelloPhase::aborted) {
            saw_abort = true;
            return {};
        }
        if (left_hello_ || silent_) return {};
        if (h.phase == msg::HelloPhase::ready) {
            left_hello_ = true; // both ready: hello done, on to the protocol handshake
            if (role_ == Role::client && !announced_) {
                announced_ = true;
                return {vec("protocol-announce-max")};
            }
            return {};
        }
        if (h.prolongation_request != true) return {}; // our first `pending` needs no answer
        const auto left = std::chrono::duration_cast<Duration>(deadline_ - now);
        const Duration waiting = left + 60s; // T_hello_inc on top of what it had left
        deadline_ = now + waiting;
        ++prolongations_answered;
        return {hello(R"([{"phase":"pending"},{"waiting":)" + std::to_string(waiting.count()) + "}]")};
    }

    Role role_;
    TimePoint deadline_;
    bool left_hello_ = false, announced_ = false, silent_ = false;
};

// Us (pending: the peer is untrusted, waiting for trust on) against that peer, messages delivered at once.
struct Pairing {
    Harness us{pending_config()};
    TimePoint start = us.now;
    OpenEebusPeer peer;

    explicit Pairing(Role our_role)
        : peer(our_role == Role::client ? Role::server : Role::client, start) {
        to_hello(us, our_role);
        us.receive(peer.first_hello());
    }

    void deliver(std::vector<Bytes> to_us = {}) {
        for (;;) {
            for (const auto& m : to_us)
                us.receive(m);
            to_us.clear();
            for (const auto& m : us.take_sent())
                for (auto& reply : peer.react(m, us.now))
                    to_us.push_back(std::move(reply));
            if (to_us.empty()) return;
        }
    }

    // The clock runs to `t`, stopping at each of our deadlines for the peer to answer what we sent there.
    void run_until(TimePoint t) {
        for (;;) {
            deliver();
            const auto deadline = us.conn.next_deadline();
            if (!deadline || *deadline > t) break;
            us.advance_to(*deadline);
        }
        us.advance_to(t);
        deliver();
    }
};

std::vector<Duration> every_5_s_up_to(Duration last) {
    std::vector<Duration> out;
    for (Duration d{0}; d <= last; d += 5s)
        out.push_back(d);
    return out;
}

} // namespace

TEST_CASE(
    "OpenEEBUS: its pending echo to our prolongation request keeps it ready; approve at any moment pairs",
    "[connection][hello][openeebus]") {
    const auto role = GENERATE(Role::client, Role::server);
    const auto approve_at = GENERATE(from_range(every_5_s_up_to(300s)));
    INFO("we are " << (role == Role::client ? "client" : "server") << ", approve at " << approve_at.count()
                   << " ms");
    Pairing p(role);
    p.run_until(p.start + approve_at);
    require_open(p.us);
    CHECK(p.us.conn.awaiting_trust());
    CHECK_FALSE(p.peer.saw_abort);
    // It answered each of our requests (at 30 s, 90 s, 150 s, ...) with its echo and we kept it as ready.
    CHECK(p.peer.prolongations_answered == (approve_at < 30s ? 0 : 1 + (approve_at - 30s) / 60s));
    p.us.approve();
    p.deliver();
    CHECK(p.us.completed == 1);
    CHECK(p.us.conn.in_data_exchange());
    CHECK(p.us.ship_ids == std::vector<std::string>{"Demo-EVSE-234567890"});
    CHECK(p.us.last_state() == PeerState::completed);
    require_open(p.us);
}

TEST_CASE("OpenEEBUS: without approve we wait while it grants, and abort at its deadline once it stops",
          "[connection][hello][openeebus]") {
    const auto role = GENERATE(Role::client, Role::server);
    const auto silent_at = GENERATE(from_range(every_5_s_up_to(300s)));
    INFO("we are " << (role == Role::client ? "client" : "server") << ", the peer stops answering at "
                   << silent_at.count() << " ms");
    Pairing p(role);
    p.run_until(p.start + silent_at);
    require_open(p.us);
    p.peer.go_silent();
    // Our next request goes unanswered; its answer was due by the peer's last announced deadline.
    const TimePoint deadline = p.peer.deadline();
    p.run_until(deadline - 1ms);
    require_open(p.us);
    CHECK(p.us.conn.awaiting_trust());
    p.run_until(deadline);
    CHECK(p.us.last_error() == "hello: the peer did not answer our prolongation request");
    CHECK(p.peer.saw_abort);
    p.run_until(deadline + 1s);
    require_closed(p.us, 4452, "Node rejected by application");
}

TEST_CASE("OpenEEBUS: its early announceMax while we are pending is held and taken after approve",
          "[connection][hello][openeebus]") {
    // Only a client sends the first protocol-handshake message, so we are the server.
    const auto early_at = GENERATE(from_range(every_5_s_up_to(300s)));
    INFO("announceMax at " << early_at.count() << " ms");
    Pairing p(Role::server);
    p.run_until(p.start + early_at);
    p.deliver(p.peer.early_handshake());
    require_open(p.us);
    CHECK(p.us.conn.awaiting_trust());
    CHECK_FALSE(p.peer.saw_abort);
    SECTION("approve 2 s later: pairs, the held announceMax answered with our select") {
        p.run_until(p.us.now + 2s);
        p.us.approve();
        p.deliver();
        CHECK(p.us.completed == 1);
        CHECK(p.us.conn.in_data_exchange());
        CHECK(p.us.ship_ids == std::vector<std::string>{"Demo-EVSE-234567890"});
        require_open(p.us);
    }
    SECTION("no approve: abort at our own T_hello from then on, then 4452") {
        const TimePoint deadline = p.us.now + 60s;
        p.run_until(deadline - 1ms);
        require_open(p.us);
        p.run_until(deadline);
        CHECK(p.peer.saw_abort);
        CHECK(
            p.us.last_error() ==
            "hello: no trust decision before our deadline (the peer had moved on to the protocol handshake)");
        p.run_until(deadline + 1s);
        require_closed(p.us, 4452, "Node rejected by application");
    }
}

// ---- the bounds of those leniencies -----------------------------------------------------------------------

TEST_CASE("HELLO pending: only the first early protocol-handshake message is held; a second one aborts",
          "[connection][hello][openeebus]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    h.receive(vec("protocol-announce-max"));
    CHECK(h.take_sent().empty());
    CHECK(h.notices.back() == "hello: held the peer's early messageProtocolHandshake (announceMax) until our "
                              "user decides");
    h.receive(vec("protocol-announce-max"));
    CHECK(h.take_sent() == Sent{vec("hello-aborted")});
    CHECK(h.last_error() == "hello: unexpected messageProtocolHandshake while waiting for hello (one "
                            "messageProtocolHandshake is held already)");
    h.advance(1s);
    require_closed(h, 4452, "Node rejected by application");
}

TEST_CASE("HELLO pending: any other message than a protocol handshake still aborts hello",
          "[connection][hello][openeebus]") {
    struct Case {
        Bytes input;
        std::string error;
    };
    const std::vector<Case> cases{
        {vec("access-methods-request"), "hello: unexpected accessMethodsRequest while waiting for hello"},
        {vec("pin-none"), "hello: unexpected connectionPinState while waiting for hello"},
        {handshake_error(1), "hello: unexpected messageProtocolHandshakeError while waiting for hello"},
        {make_frame(MessageType::data, R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{}}]})"),
         "hello: unexpected data while waiting for hello"},
    };
    for (const auto role : {Role::client, Role::server}) {
        for (const auto& c : cases) {
            INFO(c.error);
            Harness h(pending_config());
            to_hello(h, role);
            h.receive(vec("hello-ready"));
            h.receive(c.input);
            CHECK(h.take_sent() == Sent{vec("hello-aborted")});
            CHECK(h.last_error() == c.error);
        }
    }
}

TEST_CASE("HELLO pending: a ready peer's pending with waiting and no request of ours outstanding is pending",
          "[connection][hello][openeebus]") {
    // The echo leniency covers an answer to our request only; unprompted, the peer went back to pending.
    Harness h(pending_config());
    to_hello(h, Role::server);
    h.receive(vec("hello-ready"));
    h.advance(10s);
    h.receive(hello(R"([{"phase":"pending"},{"waiting":60000}])"));
    CHECK(h.deadline_in() == 30s); // our request, 30 s before its new deadline
    h.advance(30s);
    CHECK(h.take_sent() == Sent{vec("hello-prolongation-request")});
    h.receive(hello(R"([{"phase":"pending"},{"waiting":60000}])"));
    CHECK(h.deadline_in() == 30s); // our own T_hello (60 s from the peer's pending) runs again
    h.advance(30s);
    CHECK(h.take_sent() == Sent{vec("hello-aborted")});
    CHECK(h.last_error() == "hello: the peer did not become ready before our announced deadline");
}

TEST_CASE("HELLO pending: after approve the peer's announceMax may overtake its ready",
          "[connection][hello][openeebus]") {
    Harness h(pending_config());
    to_hello(h, Role::server);
    h.receive(hello(R"([{"phase":"pending"},{"waiting":60000}])"));
    h.approve();
    CHECK(h.take_sent() == Sent{vec("hello-ready")});
    CHECK(h.conn.state_name() == "hello-ready-listen");
    h.receive(vec("protocol-announce-max")); // sent while it still saw us pending
    CHECK(h.take_sent() == Sent{vec("protocol-select")});
    CHECK(h.last_state() == PeerState::trusted);
    CHECK(h.conn.state_name() == "prot-h-server-listen-confirm");
}

TEST_CASE("HELLO pending: a held announceMax from a server is judged as usual once we are ready",
          "[connection][hello][openeebus]") {
    // A server never starts the protocol handshake: once we are ready we announce, and its announceMax is
    // the unexpected message it would have been at that point (error 2).
    Harness h(pending_config());
    to_hello(h, Role::client);
    h.receive(vec("hello-ready"));
    h.receive(vec("protocol-announce-max"));
    CHECK(h.take_sent().empty());
    h.approve();
    CHECK(h.take_sent() == Sent{vec("hello-ready"), vec("protocol-announce-max"), handshake_error(2)});
    require_closed(h, 4001, "protocol handshake: unexpected announceMax, expected select");
}
