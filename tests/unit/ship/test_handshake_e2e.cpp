// Two ship::Connections wired back to back (client ⇄ server): they must reach data exchange, exchange
// data and close, and every byte either one sends must equal the reference vectors.
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "vectors.hpp"

using namespace std::chrono_literals;
using namespace ship;
using ship::test::Harness;
using ship::test::trusted_config;
using ship::test::vec;
using Sent = std::vector<Bytes>;

namespace {

const std::string client_id = "Demo-HEMS-123456789";
const std::string server_id = "Demo-EVSE-234567890";

struct Link {
    Harness client;
    Harness server;
    Sent client_sent, server_sent; // the whole transcript per direction

    Link(ConnectionConfig c, ConnectionConfig s)
        : client(std::move(c))
        , server(std::move(s)) {}

    // Delivers messages both ways until neither side has anything left to say.
    void pump() {
        for (;;) {
            auto from_client = client.take_sent();
            auto from_server = server.take_sent();
            if (from_client.empty() && from_server.empty()) return;
            for (auto& m : from_client) {
                client_sent.push_back(m);
                server.receive(m); // sent before a close, so it still arrives
            }
            for (auto& m : from_server) {
                server_sent.push_back(m);
                client.receive(m);
            }
        }
    }

    // Both clocks move together; messages are delivered between steps.
    void advance(Duration d, Duration step = 100ms) {
        for (Duration t{0}; t < d; t += step) {
            client.advance(step);
            server.advance(step);
            pump();
        }
    }

    void open() {
        client.open(Role::client);
        server.open(Role::server);
        pump();
    }
};

Bytes access_methods(const std::string& id) {
    return make_frame(MessageType::control, R"({"accessMethods":[{"id":")" + id + R"("}]})");
}

} // namespace

TEST_CASE("two trusted connections complete the handshake byte-exact with the vectors", "[e2e][vectors]") {
    Link link(trusted_config(client_id), trusted_config(server_id));
    link.open();

    CHECK(link.client_sent == Sent{vec("cmi"), vec("hello-ready"), vec("protocol-announce-max"),
                                   vec("protocol-select"), vec("pin-none"), vec("access-methods-request"),
                                   access_methods(client_id)});
    CHECK(link.server_sent == Sent{vec("cmi"), vec("hello-ready"), vec("protocol-select"), vec("pin-none"),
                                   vec("access-methods-request"), vec("access-methods")});
    for (Harness* h : {&link.client, &link.server}) {
        CHECK(h->completed == 1);
        CHECK(h->conn.in_data_exchange());
        CHECK_FALSE(h->conn.next_deadline()); // every handshake timer was stopped
        std::vector<PeerState> seen;
        for (const auto& s : h->states)
            seen.push_back(s.state);
        CHECK(seen == std::vector<PeerState>{PeerState::initiated, PeerState::in_progress, PeerState::trusted,
                                             PeerState::pin, PeerState::completed});
    }
    CHECK(link.client.ship_ids == std::vector<std::string>{server_id});
    CHECK(link.server.ship_ids == std::vector<std::string>{client_id});

    SECTION("data flows both ways: EEBUS on the wire, plain JSON at the ends") {
        for (const auto& v : ship::test::data_message_vectors()) {
            REQUIRE(link.client.conn.send_data(v.spine_plain) == std::nullopt);
            link.client.pump();
            link.pump();
            CHECK(link.client_sent.back() == make_frame(MessageType::data, v.eebus));
            CHECK(link.server.data.back() == v.spine_plain);
        }
        for (const auto& v : ship::test::spine_payload_vectors()) {
            REQUIRE(link.server.conn.send_data(v.plain) == std::nullopt);
            link.server.pump();
            link.pump();
            CHECK(link.client.data.back() == v.plain);
        }
        CHECK(link.client.notices.empty());
        CHECK(link.server.notices.empty());
    }

    SECTION("the client closes politely: announce, confirm, both close 4001") {
        link.client.conn.close("shutdown", link.client.now);
        link.client.pump();
        link.pump();
        CHECK(link.client_sent.back() == vec("close-announce"));
        CHECK(link.server_sent.back() == vec("close-confirm"));
        REQUIRE(link.client.close);
        REQUIRE(link.server.close);
        CHECK(link.client.close->code == 4001);
        CHECK(link.client.close->reason == "shutdown");
        CHECK(link.server.close->code == 4001);
        CHECK(link.server.close->reason == "connection closed by the peer (unspecific)");
        CHECK(link.client.closed_count == 1);
        CHECK(link.server.closed_count == 1);
    }
}

TEST_CASE("a pairing that takes 100 s survives through prolongation between two shipd peers",
          "[e2e][hello]") {
    Link link(trusted_config(client_id), ship::test::pending_config(server_id));
    link.open();
    CHECK(link.server_sent == Sent{vec("cmi"), vec("hello-pending")});
    CHECK(link.server.conn.awaiting_trust());

    link.advance(100s);
    // The server asked twice (at 30 s and 90 s); the client granted each with the time it had left + 60 s.
    CHECK(std::count(link.server_sent.begin(), link.server_sent.end(), vec("hello-prolongation-request")) ==
          2);
    CHECK(std::count(link.client_sent.begin(), link.client_sent.end(),
                     make_frame(MessageType::control,
                                R"({"connectionHello":[{"phase":"ready"},{"waiting":90000}]})")) == 2);
    CHECK_FALSE(link.client.close);
    CHECK_FALSE(link.server.close);

    link.server.approve();
    link.pump();
    CHECK(link.client.completed == 1);
    CHECK(link.server.completed == 1);
}

TEST_CASE("a denied pairing: the server aborts hello and the client sees remote-denied-trust",
          "[e2e][hello]") {
    Link link(trusted_config(client_id), ship::test::pending_config(server_id));
    link.open();
    link.server.conn.deny(link.server.now);
    link.server.pump();
    link.pump();
    CHECK(link.server_sent.back() == vec("hello-aborted"));
    // The client learns that the server rejected it.
    CHECK(link.client.last_state() == PeerState::remote_denied_trust);
    REQUIRE(link.client.close);
    CHECK(link.client.close->code == 4452);
    link.advance(1s);
    REQUIRE(link.server.close);
    CHECK(link.server.close->code == 4452);
}
