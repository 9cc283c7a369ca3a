// Every peer SHIP says to refuse is refused for the stated reason, and a live connection next to it carries
// on untouched (TC_SHIP_SEC_001/002 and the transport rules of ship-protocol §1).
#include <catch2/catch.hpp>

#include "harness.hpp"
#include "tls/test_certs.hpp"

using namespace ship::net;
using namespace ship::net::test;
using ship::tls::testing::BadCertificate;

namespace {

// A server with one good, open connection; after each misbehaving peer the test proves it still works.
struct LivePair {
    explicit LivePair(LinkSettings server_settings = {})
        : server_id(make_identity("server-node"))
        , client_id(make_identity("client-node"))
        , acceptor(st.make<Acceptor>(st.strand(), server_id, server_settings))
        , client(st.make<Client>(st.strand(), client_config(client_id)))
        , live_rec(st.recorder()) {
        live = st.call([&] {
            auto link = client.dial({"127.0.0.1", acceptor.port(), "/ship/", server_id.ski}, live_rec);
            st.keep(link);
            return link.get();
        });
        REQUIRE(live_rec.wait_open());
        auto accepted = acceptor.wait_accepted(0);
        REQUIRE(accepted);
        REQUIRE(accepted->recorder->wait_open());
        live_server = *accepted;
    }

    void check_live_still_works() {
        const auto to_server = pattern(300, ++round), to_client = pattern(301, ++round);
        const auto server_had = live_server.recorder->messages().size();
        const auto client_had = live_rec.messages().size();
        st.call([&] {
            REQUIRE(live->send(to_server));
            REQUIRE(live_server.link->send(to_client));
        });
        REQUIRE(live_server.recorder->wait_messages(server_had + 1));
        REQUIRE(live_rec.wait_messages(client_had + 1));
        CHECK(live_server.recorder->messages().back() == to_server);
        CHECK(live_rec.messages().back() == to_client);
        CHECK_FALSE(live_rec.closed());
        CHECK_FALSE(live_server.recorder->closed());
    }

    // A second, ordinary connection from the good client, for tests that need our own client to misbehave.
    std::pair<Link*, Acceptor::Accepted> second_connection(Recorder& rec) {
        const auto before = acceptor.accepted_count();
        Link* link = st.call([&] {
            auto l = client.dial({"127.0.0.1", acceptor.port(), "/ship/", server_id.ski}, rec);
            st.keep(l);
            return l.get();
        });
        REQUIRE(rec.wait_open());
        auto accepted = acceptor.wait_accepted(before);
        REQUIRE(accepted);
        REQUIRE(accepted->recorder->wait_open());
        return {link, *accepted};
    }

    StrandThread st;
    ship::tls::Identity server_id, client_id;
    Acceptor& acceptor;
    Client& client;
    Recorder& live_rec;
    Link* live = nullptr;
    Acceptor::Accepted live_server;
    std::uint32_t round = 0;
};

} // namespace

TEST_CASE("TC_SHIP_SEC: a client without a certificate fails the TLS handshake", "[net][integration]") {
    LivePair pair;
    auto& client = pair.st.make<Client>(pair.st.strand(), ClientConfig{});
    auto& rec = pair.st.recorder();
    pair.st.call([&] {
        pair.st.keep(client.dial({"127.0.0.1", pair.acceptor.port(), "/ship/", pair.server_id.ski}, rec));
    });
    auto closed = rec.wait_closed();
    REQUIRE(closed);
    CHECK_FALSE(closed->was_open);
    CHECK(closed->by == CloseInfo::By::transport);
    CHECK(closed->reason == "dial failed: TLS alert from the server: certificate required");
    REQUIRE(pair.acceptor.wait_failures(1));
    CHECK(pair.acceptor.failures()[0].reason == "peer sent no certificate (TLS alert certificate required)");
    CHECK(pair.acceptor.accepted_count() == 1);
    pair.check_live_still_works();
}

TEST_CASE("TC_SHIP_SEC_001/002: a client certificate breaking the SKI rule fails the TLS handshake",
          "[net][integration]") {
    LivePair pair;
    std::size_t failures = 0;
    for (auto kind : {BadCertificate::rsa_key, BadCertificate::ec_p384_key, BadCertificate::missing_ski,
                      BadCertificate::short_ski, BadCertificate::ski_not_matching_key,
                      BadCertificate::ski_of_other_certificate}) {
        INFO(ship::tls::testing::to_string(kind));
        const auto bad =
            ship::tls::testing::make_bad_identity(kind, {"bad-peer", {}, {}, {}}, pair.client_id.ski);
        ClientConfig config;
        config.certificate_pem = bad.certificate_pem;
        config.private_key_pem = bad.private_key_pem;
        auto& client = pair.st.make<Client>(pair.st.strand(), config);
        auto& rec = pair.st.recorder();
        pair.st.call([&] {
            pair.st.keep(client.dial({"127.0.0.1", pair.acceptor.port(), "/ship/", pair.server_id.ski}, rec));
        });
        auto closed = rec.wait_closed();
        REQUIRE(closed);
        CHECK_FALSE(closed->was_open);
        CHECK(closed->reason == "dial failed: TLS alert from the server: handshake failure");
        CHECK(rec.open_count() == 0);
        REQUIRE(pair.acceptor.wait_failures(++failures));
        // The server's reason is the SHIP check's own words about this certificate.
        CHECK(pair.acceptor.failures().back().reason == bad.expected_reason);
        CHECK(pair.acceptor.failures().back().remote_address.rfind("127.0.0.1:", 0) == 0);
        CHECK(pair.acceptor.accepted_count() == 1); // never reached the owner
        pair.check_live_still_works();
    }
}

TEST_CASE("a server whose SKI is not the expected one, or whose certificate breaks the rule, is refused",
          "[net][integration]") {
    LivePair pair;
    SECTION("good certificate, other SKI") {
        const auto someone_else = make_identity("someone-else");
        auto& rec = pair.st.recorder();
        pair.st.call([&] {
            pair.st.keep(
                pair.client.dial({"127.0.0.1", pair.acceptor.port(), "/ship/", someone_else.ski}, rec));
        });
        auto closed = rec.wait_closed();
        REQUIRE(closed);
        CHECK_FALSE(closed->was_open);
        CHECK(closed->by == CloseInfo::By::transport);
        CHECK(closed->reason ==
              "server SKI " + pair.server_id.ski + " is not the expected " + someone_else.ski);
        CHECK(pair.acceptor.accepted_count() == 1); // refused inside TLS: no HTTP request was sent
    }
    SECTION("RSA server certificate") {
        const auto bad = ship::tls::testing::make_bad_identity(BadCertificate::rsa_key);
        ship::tls::Identity bad_server{bad.certificate_pem, bad.private_key_pem, bad.ski_extension};
        auto& rsa_server = pair.st.make<Acceptor>(pair.st.strand(), bad_server);
        auto& rec = pair.st.recorder();
        pair.st.call([&] {
            pair.st.keep(
                pair.client.dial({"127.0.0.1", rsa_server.port(), "/ship/", bad.ski_extension}, rec));
        });
        auto closed = rec.wait_closed();
        REQUIRE(closed);
        CHECK(closed->reason == "server certificate refused: " + bad.expected_reason);
        CHECK(rsa_server.accepted_count() == 0);
    }
    pair.check_live_still_works();
}

TEST_CASE("a plain TCP (non-TLS) client gets no HTTP and is dropped", "[net][integration]") {
    LivePair pair;
    const auto answer = plain_tcp_exchange(pair.acceptor.port(),
                                           "GET /ship/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n");
    CHECK(answer.find("HTTP/") == std::string::npos);
    CHECK(pair.acceptor.accepted_count() == 1);
    pair.check_live_still_works();
}

TEST_CASE("an upgrade without subprotocol ship is refused with HTTP 400", "[net][integration]") {
    LivePair pair;
    for (const std::string offered : {"", "chat", "shipx, other"}) {
        INFO("offered: '" << offered << "'");
        RawTlsClient raw("127.0.0.1", pair.acceptor.port(), pair.client_id);
        const auto head = raw.upgrade("/ship/", offered);
        INFO("head: " << head);
        CHECK(head.rfind("HTTP/1.", 0) == 0);
        CHECK(head.find(" 400 ") == 8);
        CHECK(pair.acceptor.accepted_count() == 1);
    }
    // The header may list several protocols; `ship` among them is enough.
    RawTlsClient raw("127.0.0.1", pair.acceptor.port(), pair.client_id);
    CHECK(raw.upgrade("/ship/", "other, ship").rfind("HTTP/1.1 101", 0) == 0);
    REQUIRE(pair.acceptor.wait_accepted(1));
    pair.check_live_still_works();
}

TEST_CASE("a text frame closes the connection with 1003", "[net][integration]") {
    LivePair pair;
    Acceptor::Accepted accepted;
    {
        RawTlsClient raw("127.0.0.1", pair.acceptor.port(), pair.client_id);
        REQUIRE(raw.upgrade("/", "ship").rfind("HTTP/1.1 101", 0) == 0);
        auto got = pair.acceptor.wait_accepted(1);
        REQUIRE(got);
        accepted = *got;
        REQUIRE(accepted.recorder->wait_open());
        raw.send_frame(0x1, bytes_of("{\"connectionHello\":[]}"));
        const auto frame = raw.read_frame();
        REQUIRE(frame.opcode == 0x8);
        REQUIRE(frame.payload.size() >= 2);
        CHECK(((frame.payload[0] << 8) | frame.payload[1]) == 1003);
        raw.send_frame(0x8, frame.payload); // a well-behaved peer answers the close, then hangs up
    }
    auto closed = accepted.recorder->wait_closed();
    REQUIRE(closed);
    CHECK(closed->by == CloseInfo::By::local);
    CHECK(closed->code == 1003);
    CHECK(closed->reason == "text frames are not allowed in SHIP");
    CHECK(accepted.recorder->messages().empty());
    pair.check_live_still_works();
}

TEST_CASE("a 1-byte message is delivered to the owner, who judges it", "[net][integration]") {
    // The transport does not interpret content: SHIP's "shorter than 2 bytes" rule is the session's
    // (ship::Connection, driven by hub::PeerConnection) to apply, with the SHIP close code.
    LivePair pair;
    auto& rec = pair.st.recorder();
    auto [link, accepted] = pair.second_connection(rec);
    pair.st.call([&, link = link] { REQUIRE(link->send(std::vector<std::uint8_t>{0x00})); });
    REQUIRE(accepted.recorder->wait_messages(1));
    CHECK(accepted.recorder->messages()[0] == std::vector<std::uint8_t>{0x00});
    pair.st.call([&, server_link = accepted.link] { server_link->close(4001, "message too short"); });
    auto closed = rec.wait_closed();
    REQUIRE(closed);
    CHECK(closed->by == CloseInfo::By::peer);
    CHECK(closed->code == 4001);
    CHECK(closed->reason == "message too short");
    pair.check_live_still_works();
}

TEST_CASE("a 200 KiB message closes the connection with 1009", "[net][integration]") {
    LivePair pair;
    SECTION("sent by our own client") {
        auto& rec = pair.st.recorder();
        auto [link, accepted] = pair.second_connection(rec);
        pair.st.call([&, link = link] { REQUIRE(link->send(pattern(200 * 1024, 7))); });
        auto closed = rec.wait_closed();
        REQUIRE(closed);
        CHECK(closed->by == CloseInfo::By::peer);
        CHECK(closed->code == 1009);
        auto server_closed = accepted.recorder->wait_closed();
        REQUIRE(server_closed);
        CHECK(server_closed->by == CloseInfo::By::local);
        CHECK(server_closed->code == 1009);
        CHECK(server_closed->reason == "message larger than 102400 bytes");
        CHECK(accepted.recorder->messages().empty());
    }
    SECTION("announced in a frame header: refused before the payload arrives") {
        RawTlsClient raw("127.0.0.1", pair.acceptor.port(), pair.client_id);
        REQUIRE(raw.upgrade("/ship/", "ship").rfind("HTTP/1.1 101", 0) == 0);
        // A frame header announcing 204800 bytes followed by only 1000 of them: the server must not wait
        // for (or buffer) the rest before refusing.
        raw.send_partial_frame(0x2, 200 * 1024, pattern(1000, 1));
        const auto frame = raw.read_frame();
        REQUIRE(frame.opcode == 0x8);
        REQUIRE(frame.payload.size() >= 2);
        CHECK(((frame.payload[0] << 8) | frame.payload[1]) == 1009);
    }
    pair.check_live_still_works();
}

TEST_CASE("a peer that stops answering pings is hung up on", "[net][integration]") {
    LinkSettings short_pings;
    short_pings.ping.ping_after = 1s;
    short_pings.ping.hang_up_after = 2s;
    LivePair pair(short_pings); // the live client answers the server's pings (lws does)
    RawTlsClient raw("127.0.0.1", pair.acceptor.port(), pair.client_id);
    REQUIRE(raw.upgrade("/ship/", "ship").rfind("HTTP/1.1 101", 0) == 0);
    auto accepted = pair.acceptor.wait_accepted(1);
    REQUIRE(accepted);
    REQUIRE(accepted->recorder->wait_open());
    const auto started = std::chrono::steady_clock::now();
    // The raw peer never reads, so it never answers the PING lws sends after 1 s. lws hangs up at 2 s and
    // reports the close once the socket is gone: it waits up to 5 s for a TLS peer to finish its side.
    auto closed = accepted->recorder->wait_closed(20s);
    REQUIRE(closed);
    CHECK(closed->by == CloseInfo::By::transport);
    CHECK(closed->reason == "no pong for 2 s (ping timeout)");
    CHECK(std::chrono::steady_clock::now() - started >= 1500ms);
    pair.check_live_still_works(); // pinged every second all along, and answered
}

// Issue 13: the hang-up reason comes from the keep-alive sweep that decided it, not from a guess at close
// time. A peer that answers every ping for longer than `hang_up_after` and then vanishes without a close
// frame is a peer that went away, not a ping timeout.
TEST_CASE("a peer that answers pings and then vanishes is not reported as a ping timeout",
          "[net][integration]") {
    LinkSettings short_pings;
    short_pings.ping.ping_after = 1s;
    short_pings.ping.hang_up_after = 2s;
    LivePair pair(short_pings);
    const auto started = std::chrono::steady_clock::now();
    {
        RawTlsClient raw("127.0.0.1", pair.acceptor.port(), pair.client_id);
        REQUIRE(raw.upgrade("/ship/", "ship").rfind("HTTP/1.1 101", 0) == 0);
        auto accepted = pair.acceptor.wait_accepted(1);
        REQUIRE(accepted);
        REQUIRE(accepted->recorder->wait_open());
        // Answer every ping for well past hang_up_after (3 pings ≈ 3 s).
        int pongs = 0;
        while (pongs < 3) {
            const auto frame = raw.read_frame(5s);
            REQUIRE(frame.opcode != -1);
            if (frame.opcode == 0x9) {
                CHECK_FALSE(frame.payload.empty()); // lws drops empty pings; ours carry a payload
                raw.send_frame(0xA, frame.payload);
                ++pongs;
            }
        }
        CHECK(std::chrono::steady_clock::now() - started >= 2500ms);
        CHECK_FALSE(accepted->recorder->closed()); // answered pings keep the link
        // The raw client goes away here: TCP closed, no WebSocket close frame.
    }
    auto accepted = pair.acceptor.wait_accepted(1);
    auto closed = accepted->recorder->wait_closed(5s);
    REQUIRE(closed);
    CHECK(closed->by == CloseInfo::By::transport);
    CHECK(closed->reason == "peer closed without close frame");
    pair.check_live_still_works();
}
