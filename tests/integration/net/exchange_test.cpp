// Two real endpoints on loopback with real TLS: messages both ways, in order, whole, large ones fragmented.
#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace ship::net;
using namespace ship::net::test;

namespace {

std::vector<std::uint8_t> numbered(std::size_t i, std::size_t size) {
    auto message = pattern(size, static_cast<std::uint32_t>(i));
    for (std::size_t b = 0; b < 4 && b < size; ++b)
        message[b] = static_cast<std::uint8_t>(i >> (8 * b));
    return message;
}

std::size_t size_of_message(std::size_t i) {
    if (i == 500) return 90 * 1024; // the 90 KiB one, in the middle of the stream
    return 2 + (i * 37) % 3000;
}

} // namespace

TEST_CASE("1000 binary messages each way arrive whole and in order, a 90 KiB one fragmented",
          "[net][integration]") {
    const auto server_id = make_identity("server-node");
    const auto client_id = make_identity("client-node");
    StrandThread st;
    // The server sends what exceeds 4096 bytes as WebSocket fragments of 4096, as ship-go does; the
    // client sends whole frames (which lws hands over in pieces anyway).
    LinkSettings server_settings;
    server_settings.send_fragment_bytes = 4096;
    auto& acceptor = st.make<Acceptor>(st.strand(), server_id, server_settings);
    auto& client = st.make<Client>(st.strand(), client_config(client_id));
    auto& client_rec = st.recorder();

    Link* client_link = st.call([&] {
        auto link = client.dial({"127.0.0.1", acceptor.port(), "/ship/", server_id.ski}, client_rec);
        st.keep(link);
        return link.get();
    });
    REQUIRE(client_rec.wait_open());
    auto accepted = acceptor.wait_accepted(0);
    REQUIRE(accepted);
    REQUIRE(accepted->recorder->wait_open());

    st.call([&] {
        CHECK(client_link->role() == ship::Role::client);
        CHECK(client_link->peer_ski() == server_id.ski);
        CHECK(client_link->path() == "/ship/");
        CHECK(client_link->remote_address() == "127.0.0.1:" + std::to_string(acceptor.port()));
        CHECK(accepted->link->role() == ship::Role::server);
        CHECK(accepted->link->peer_ski() == client_id.ski);
        CHECK(accepted->link->path() == "/ship/");
        CHECK(accepted->link->remote_address().rfind("127.0.0.1:", 0) == 0);
    });

    constexpr std::size_t count = 1000;
    st.call([&] {
        for (std::size_t i = 0; i < count; ++i) {
            REQUIRE(client_link->send(numbered(i, size_of_message(i))));
            REQUIRE(accepted->link->send(numbered(count + i, size_of_message(i))));
        }
    });
    REQUIRE(accepted->recorder->wait_messages(count, 30s));
    REQUIRE(client_rec.wait_messages(count, 30s));
    const auto at_server = accepted->recorder->messages();
    const auto at_client = client_rec.messages();
    REQUIRE(at_server.size() == count);
    REQUIRE(at_client.size() == count);
    for (std::size_t i = 0; i < count; ++i) {
        REQUIRE(at_server[i] == numbered(i, size_of_message(i)));
        REQUIRE(at_client[i] == numbered(count + i, size_of_message(i)));
    }
    CHECK(at_client[500].size() == 90 * 1024);

    // A polite close from the client: both sides report it with the code and reason we gave.
    st.call([&] { client_link->close(4001, "done"); });
    auto client_closed = client_rec.wait_closed();
    auto server_closed = accepted->recorder->wait_closed();
    REQUIRE(client_closed);
    REQUIRE(server_closed);
    CHECK(client_closed->by == CloseInfo::By::local);
    CHECK(client_closed->code == 4001);
    CHECK(client_closed->reason == "done");
    CHECK(server_closed->by == CloseInfo::By::peer);
    CHECK(server_closed->code == 4001);
    CHECK(server_closed->reason == "done");
    CHECK(client_rec.closed_count() == 1);
    CHECK(accepted->recorder->closed_count() == 1);
}

TEST_CASE("a dial over IPv6 loopback reaches a server listening on ::1", "[net][integration]") {
    const auto server_id = make_identity("server-v6");
    const auto client_id = make_identity("client-v6");
    StrandThread st;
    auto& acceptor = st.make<Acceptor>(st.strand(), server_id, LinkSettings{}, false, "::1");
    auto& client = st.make<Client>(st.strand(), client_config(client_id));
    // The zone itself ("fe80::1%eth0") is tested in zone_test.cpp, inside a network namespace of its own.
    for (const std::string host : {"::1"}) {
        auto& rec = st.recorder();
        Link* link = st.call([&] {
            auto l = client.dial({host, acceptor.port(), "/ship/", server_id.ski}, rec);
            st.keep(l);
            return l.get();
        });
        INFO(host);
        REQUIRE(rec.wait_open());
        st.call(
            [&] { CHECK(link->remote_address() == "[" + host + "]:" + std::to_string(acceptor.port())); });
    }
    auto first = acceptor.wait_accepted(0);
    REQUIRE(first);
    st.call([&] { CHECK(first->link->remote_address().rfind("[::1]:", 0) == 0); });
}

TEST_CASE("a refused upgrade at the mDNS path is retried once at /", "[net][integration]") {
    const auto server_id = make_identity("server-path");
    const auto client_id = make_identity("client-path");
    StrandThread st;
    auto& acceptor = st.make<Acceptor>(st.strand(), server_id);
    st.call([&] {
        acceptor.refuse = [](const std::shared_ptr<Link>& link) -> std::optional<Admission> {
            if (link->path() != "/") return Admission::refuse("no such path", 404);
            return std::nullopt;
        };
    });
    auto& client = st.make<Client>(st.strand(), client_config(client_id));
    auto& rec = st.recorder();
    Link* link = st.call([&] {
        auto l = client.dial({"127.0.0.1", acceptor.port(), "/ship/", server_id.ski}, rec);
        st.keep(l);
        return l.get();
    });
    REQUIRE(rec.wait_open());
    st.call([&] { CHECK(link->path() == "/"); });
    CHECK(acceptor.accepted_count() == 1);
}

TEST_CASE("a refused admission (HTTP 503) is not retried and reports why", "[net][integration]") {
    const auto server_id = make_identity("server-503");
    const auto client_id = make_identity("client-503");
    StrandThread st;
    auto& acceptor = st.make<Acceptor>(st.strand(), server_id);
    int asked = 0;
    st.call([&] {
        acceptor.refuse = [&asked](const std::shared_ptr<Link>&) -> std::optional<Admission> {
            ++asked;
            return Admission::refuse("double connection");
        };
    });
    auto& client = st.make<Client>(st.strand(), client_config(client_id));
    auto& rec = st.recorder();
    st.call([&] { st.keep(client.dial({"127.0.0.1", acceptor.port(), "/ship/", server_id.ski}, rec)); });
    auto closed = rec.wait_closed();
    REQUIRE(closed);
    CHECK_FALSE(closed->was_open);
    CHECK(closed->by == CloseInfo::By::transport);
    CHECK(closed->reason == "refused by the peer (HTTP 503)");
    CHECK(rec.open_count() == 0);
    CHECK(st.call([&] { return asked; }) == 1);
}

TEST_CASE("dials end with a reason: nothing listening, connect timeout, cancelled", "[net][integration]") {
    const auto client_id = make_identity("client-dials");
    const auto other = make_identity("nobody");
    StrandThread st;
    ClientConfig config = client_config(client_id);
    config.connect_timeout = 500ms;
    auto& client = st.make<Client>(st.strand(), config);

    SECTION("nothing listening") {
        std::uint16_t port = 0;
        {
            BlackHole closed_again; // a port that was free a moment ago and is closed now
            port = closed_again.port();
        }
        auto& rec = st.recorder();
        st.call([&] { st.keep(client.dial({"127.0.0.1", port, "/", other.ski}, rec)); });
        auto closed = rec.wait_closed();
        REQUIRE(closed);
        CHECK_FALSE(closed->was_open);
        CHECK(closed->by == CloseInfo::By::transport);
        CHECK_FALSE(closed->reason.empty());
    }
    SECTION("a peer that never answers TLS: connect timeout") {
        BlackHole hole;
        auto& rec = st.recorder();
        const auto started = std::chrono::steady_clock::now();
        st.call([&] { st.keep(client.dial({"127.0.0.1", hole.port(), "/ship/", other.ski}, rec)); });
        auto closed = rec.wait_closed();
        REQUIRE(closed);
        CHECK(closed->reason == "connect timeout after 500 ms");
        CHECK(std::chrono::steady_clock::now() - started >= 450ms);
    }
    SECTION("the owner cancels a dial in flight") {
        BlackHole hole;
        auto& rec = st.recorder();
        Link* link = st.call([&] {
            auto l = client.dial({"127.0.0.1", hole.port(), "/ship/", other.ski}, rec);
            st.keep(l);
            return l.get();
        });
        st.call([&] { link->close(4001, "double connection"); });
        auto closed = rec.wait_closed(2s);
        REQUIRE(closed);
        CHECK(closed->by == CloseInfo::By::local);
        CHECK(closed->reason == "double connection");
        CHECK_FALSE(closed->was_open);
    }
}
