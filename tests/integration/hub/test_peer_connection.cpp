// PeerConnection, the one driver of a ship::Connection: the SHIP handshake (CMI, hello, protocol handshake,
// PIN, access methods) over real TLS WebSockets in both directions, data both ways, the polite close, and
// SHIP judging short messages — lib/net links and the hub's strand timers, no Hub.
#include <catch2/catch.hpp>

#include "../net/harness.hpp"
#include "hub/lws/strand_timers.hpp"
#include "hub/peer_connection.hpp"

using namespace ship::net;
using namespace ship::net::test;
using ship::hub::PeerConnection;

namespace {

// Thread-safe record of one connection's events.
class SessionRecorder : public ship::hub::PeerConnectionOwner {
public:
    void on_state(PeerConnection&, ship::PeerState state, const std::string&) override {
        std::lock_guard lock(mutex_);
        states_.push_back(state);
        changed_.notify_all();
    }
    void on_ship_id(PeerConnection&, const std::string& id) override {
        std::lock_guard lock(mutex_);
        ship_id_ = id;
        changed_.notify_all();
    }
    void on_completed(PeerConnection&) override {
        std::lock_guard lock(mutex_);
        completed_ = true;
        changed_.notify_all();
    }
    void on_data(PeerConnection&, const std::string& json) override {
        std::lock_guard lock(mutex_);
        data_.push_back(json);
        changed_.notify_all();
    }
    void on_ended(PeerConnection& connection, const CloseInfo& info) override {
        std::lock_guard lock(mutex_);
        ended_ = std::make_pair(connection.end_description(info.reason), info);
        changed_.notify_all();
    }

    bool wait_completed() {
        return wait([&] { return completed_ || ended_.has_value(); }) && completed_;
    }
    bool wait_ship_id() {
        return wait([&] { return !ship_id_.empty() || ended_.has_value(); }) && !ship_id().empty();
    }
    bool wait_data(std::size_t n) {
        return wait([&] { return data_.size() >= n; });
    }
    std::optional<std::pair<std::string, CloseInfo>> wait_ended() {
        wait([&] { return ended_.has_value(); });
        std::lock_guard lock(mutex_);
        return ended_;
    }
    std::string ship_id() {
        std::lock_guard lock(mutex_);
        return ship_id_;
    }
    std::vector<std::string> data() {
        std::lock_guard lock(mutex_);
        return data_;
    }
    std::vector<ship::PeerState> states() {
        std::lock_guard lock(mutex_);
        return states_;
    }

private:
    template <typename P>
    bool wait(P predicate) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, deadline, predicate);
    }
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<ship::PeerState> states_;
    std::string ship_id_;
    bool completed_ = false;
    std::vector<std::string> data_;
    std::optional<std::pair<std::string, CloseInfo>> ended_;
};

ship::ConnectionConfig session_config(const std::string& ship_id) {
    ship::ConnectionConfig config;
    config.own_ship_id = ship_id;
    config.peer_trusted = true;
    return config;
}

// A SHIP node: a server that runs a PeerConnection on every accepted Link, and a client to dial with.
struct Node {
    Node(StrandThread& thread, const std::string& name)
        : st(thread)
        , identity(make_identity(name))
        , ship_id("shipd-test-" + name) {
        st.call([&] {
            timers = std::make_shared<ship::hub::StrandTimers>(st.strand(), Timer::Kind::shutdown);
            st.keep(timers);
            ServerConfig config;
            config.certificate_pem = identity.certificate_pem;
            config.private_key_pem = identity.private_key_pem;
            config.listen_address = "127.0.0.1";
            config.admit = [this](const std::shared_ptr<Link>& link) {
                auto& session = start_session(link, ship::hub::Direction::incoming);
                return Admission::accept(session);
            };
            server = std::make_shared<Server>(st.strand(), std::move(config));
            st.keep(server);
            client = std::make_shared<Client>(st.strand(), client_config(identity));
            st.keep(client);
        });
    }

    // Strand. The connection starts its SME when the link opens (on_open).
    PeerConnection& start_session(const std::shared_ptr<Link>& link, ship::hub::Direction direction) {
        auto recorder = std::make_shared<SessionRecorder>();
        auto session =
            std::make_shared<PeerConnection>(*timers, *recorder, link, direction, session_config(ship_id));
        st.keep(recorder);
        st.keep(session);
        std::lock_guard lock(mutex);
        sessions.push_back({session.get(), recorder.get()});
        changed.notify_all();
        return *session;
    }

    std::pair<PeerConnection*, SessionRecorder*> dial(Node& other) {
        const auto before = count();
        st.call([&] {
            auto link =
                client->dial({"127.0.0.1", other.server->port(), "/ship/", other.identity.ski}, *dummy());
            start_session(link, ship::hub::Direction::outgoing);
        });
        return wait_session(before);
    }

    std::pair<PeerConnection*, SessionRecorder*> wait_session(std::size_t n) {
        std::unique_lock lock(mutex);
        REQUIRE(changed.wait_for(lock, deadline, [&] { return sessions.size() > n; }));
        return sessions[n];
    }
    std::size_t count() {
        std::lock_guard lock(mutex);
        return sessions.size();
    }
    LinkHandler* dummy() { return &placeholder; } // replaced by the session right away

    StrandThread& st;
    ship::tls::Identity identity;
    std::string ship_id;
    std::shared_ptr<ship::hub::StrandTimers> timers; // kept before the connections: outlives them
    std::shared_ptr<Server> server;
    std::shared_ptr<Client> client;
    Recorder placeholder;
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::pair<PeerConnection*, SessionRecorder*>> sessions;
};

} // namespace

TEST_CASE("the SHIP handshake completes over real TLS in both directions; data flows; the close is polite",
          "[net][integration]") {
    StrandThread st;
    Node a(st, "node-a"), b(st, "node-b");

    auto [a_to_b, a_out] = a.dial(b); // A is the SHIP client, B the server
    auto [b_in, b_in_rec] = b.wait_session(0);
    auto [b_to_a, b_out] = b.dial(a); // and the other way round
    auto [a_in, a_in_rec] = a.wait_session(1);

    for (auto* rec : {a_out, b_in_rec, b_out, a_in_rec}) {
        REQUIRE(rec->wait_completed());
        REQUIRE(rec->wait_ship_id()); // accessMethods may arrive just after data exchange began
    }
    CHECK(a_out->ship_id() == b.ship_id);
    CHECK(b_in_rec->ship_id() == a.ship_id);
    CHECK(b_out->ship_id() == a.ship_id);
    CHECK(a_in_rec->ship_id() == b.ship_id);
    const auto states = a_out->states();
    REQUIRE_FALSE(states.empty());
    CHECK(states.back() == ship::PeerState::completed);
    st.call([&, a_to_b = a_to_b, b_in = b_in] {
        CHECK(a_to_b->link().role() == ship::Role::client);
        CHECK(b_in->link().role() == ship::Role::server);
        CHECK(a_to_b->in_data_exchange());
    });

    const std::string from_a = R"({"datagram":{"header":{"msgCounter":1},"payload":{"cmd":[]}}})";
    const std::string from_b = R"({"datagram":{"header":{"msgCounter":2},"payload":{"cmd":[]}}})";
    st.call([&, a_to_b = a_to_b, b_in = b_in] {
        CHECK_FALSE(a_to_b->send_data(from_a));
        CHECK_FALSE(b_in->send_data(from_b));
    });
    REQUIRE(b_in_rec->wait_data(1));
    REQUIRE(a_out->wait_data(1));
    CHECK(b_in_rec->data()[0].find("\"msgCounter\":1") != std::string::npos);
    CHECK(a_out->data()[0].find("\"msgCounter\":2") != std::string::npos);

    // SHIP close: connectionClose announce → confirm → WebSocket 4001 from the announcer.
    st.call([&, a_to_b = a_to_b] { a_to_b->close(ship::close_code_ship, "removedConnection"); });
    auto a_end = a_out->wait_ended();
    auto b_end = b_in_rec->wait_ended();
    REQUIRE(a_end);
    REQUIRE(b_end);
    CHECK(a_end->second.code == ship::close_code_ship);
    CHECK(b_end->second.code == ship::close_code_ship);
    CHECK(a_end->second.by == CloseInfo::By::local); // B confirms and closes too: either may count as local
    // The other pair is untouched.
    st.call([&, b_to_a = b_to_a] { CHECK(b_to_a->in_data_exchange()); });
}

TEST_CASE("a 1-byte message ends the SHIP connection with a SHIP close", "[net][integration]") {
    StrandThread st;
    Node a(st, "node-short");
    auto& raw_client = st.make<Client>(st.strand(), client_config(make_identity("raw-peer")));
    auto& rec = st.recorder();
    Link* link = st.call([&] {
        auto l = raw_client.dial({"127.0.0.1", a.server->port(), "/ship/", a.identity.ski}, rec);
        st.keep(l);
        return l.get();
    });
    REQUIRE(rec.wait_open());
    st.call([&] { REQUIRE(link->send(std::vector<std::uint8_t>{0x00})); });
    auto closed = rec.wait_closed();
    REQUIRE(closed);
    CHECK(closed->by == CloseInfo::By::peer);
    CHECK(closed->code == ship::close_code_ship);
    auto [session, session_rec] = a.wait_session(0);
    (void)session;
    auto ended = session_rec->wait_ended();
    REQUIRE(ended);
    CHECK_FALSE(ended->first.empty());
    INFO(ended->first);
}
