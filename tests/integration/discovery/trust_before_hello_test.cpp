// Trust (or auto-accept) given while a connection is registered but has not reached hello yet: the hub
// approves the hello when it gets there. The discovery test's mutual Trust over D-Bus hit this window under
// ASan: the second node trusted the first while the first's connection was still in CMI, then answered hello
// `pending` and waited for a user who had already said yes.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "../hub/hub_harness.hpp"
#include "net/client.hpp"
#include "net/strand.hpp"
#include "ship/connection.hpp"

namespace ship::hub::it {
namespace {

// A SHIP client on its own strand that opens its WebSocket to a hub and runs its SME (CMI, hello, ...) only
// once go() is called; what the hub sends before that is fed to the SME then. Until go(), the hub holds a
// registered connection that has not reached hello.
class PausedPeer final : public net::LinkHandler {
public:
    explicit PausedPeer(const tls::Identity& identity) {
        strand_ = std::make_unique<net::Strand>(stop_.get_token());
        thread_ = std::thread([this] { strand_->run(); });
        call([&] {
            net::ClientConfig config;
            config.certificate_pem = identity.certificate_pem;
            config.private_key_pem = identity.private_key_pem;
            client_ = std::make_unique<net::Client>(*strand_, std::move(config));
        });
        ship::ConnectionConfig sme;
        sme.own_ship_id = "paused-peer";
        sme.peer_trusted = true; // it trusts the hub; only the hub's side is in question
        sme.allow_waiting_for_trust = true;
        sme_.emplace(std::move(sme));
    }
    ~PausedPeer() override {
        stop_.request_stop();
        thread_.join();
        link_.reset(); // parked strand: the link, the client, then the strand
        client_.reset();
        strand_.reset();
    }
    PausedPeer(const PausedPeer&) = delete;
    PausedPeer& operator=(const PausedPeer&) = delete;

    void dial(std::uint16_t port, const std::string& ski) {
        call([&] {
            net::DialRequest request;
            request.host = "127.0.0.1";
            request.port = port;
            request.expected_ski = ski;
            link_ = client_->dial(request, *this);
        });
    }

    void go() {
        call([&] {
            started_ = true;
            sme_->open(ship::Role::client, Clock::now());
            run_actions();
            for (auto& message : std::exchange(early_, {})) {
                sme_->receive(message, Clock::now());
                run_actions();
            }
        });
    }

    bool wait_opened(std::chrono::milliseconds timeout) {
        return wait(timeout, [&] { return opened_; });
    }
    bool wait_data_exchange(std::chrono::milliseconds timeout) {
        return wait(timeout, [&] { return data_exchange_; });
    }

private:
    void on_open(net::Link&) override {
        set([&] { opened_ = true; });
    }
    void on_message(net::Link&, std::vector<std::uint8_t> message) override {
        if (!started_) {
            early_.push_back(std::move(message));
            return;
        }
        sme_->receive(message, Clock::now());
        run_actions();
    }
    void on_closed(net::Link&, const net::CloseInfo&) override {}

    // Timers are not armed: the test waits with its own deadline.
    void run_actions() {
        for (auto& action : sme_->take_actions()) {
            if (auto* send = std::get_if<ship::action::Send>(&action)) {
                if (link_) link_->send(send->bytes);
            } else if (auto* close = std::get_if<ship::action::CloseTransport>(&action)) {
                if (link_) link_->close(close->code, close->reason);
            } else if (std::holds_alternative<ship::action::Completed>(action)) {
                set([&] { data_exchange_ = true; });
            }
        }
    }

    template <typename F>
    void call(F&& fn) {
        auto task = std::make_shared<std::packaged_task<void()>>(std::forward<F>(fn));
        auto done = task->get_future();
        if (!strand_->post([task] { (*task)(); }))
            throw std::runtime_error("paused peer: strand is stopping");
        if (done.wait_for(deadline) != std::future_status::ready)
            watchdog_abort("paused peer: the strand did not run a call within the deadline");
        done.get();
    }
    template <typename F>
    void set(F&& change) {
        std::lock_guard lock(mutex_);
        change();
        changed_.notify_all();
    }
    bool wait(std::chrono::milliseconds timeout, const std::function<bool()>& condition) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, condition);
    }

    std::stop_source stop_;
    std::unique_ptr<net::Strand> strand_;
    std::thread thread_;
    std::unique_ptr<net::Client> client_;
    std::shared_ptr<net::Link> link_;
    std::optional<ship::Connection> sme_;          // strand only
    bool started_ = false;                         // strand only
    std::vector<std::vector<std::uint8_t>> early_; // strand only

    std::mutex mutex_;
    std::condition_variable changed_;
    bool opened_ = false, data_exchange_ = false;
};

// The hub registered the peer's connection and is waiting for its CMI.
void wait_registered(Node& hub, PausedPeer& peer) {
    REQUIRE(peer.wait_opened(deadline));
    REQUIRE(
        eventually(hub.log(), [&] { return hub.call([](Hub& h) { return h.live_connections(); }) == 1; }));
}

// A whole handshake on loopback takes milliseconds; without the fix the hub would wait the hello timeout.
constexpr auto handshake = std::chrono::seconds(5);

} // namespace

TEST_CASE("Trust given before the connection reaches hello approves its hello", "[hub][trust]") {
    const auto identities = larger_and_smaller();
    const tls::Identity& hub_identity = identities.first;
    const tls::Identity& peer_identity = identities.second;
    Node hub("hub", hub_identity);
    PausedPeer peer(peer_identity);
    peer.dial(hub.port(), hub.ski());
    wait_registered(hub, peer);

    REQUIRE_FALSE(hub.call([&](Hub& h) { return h.trust(peer_identity.ski); }));
    peer.go();
    CHECK(peer.wait_data_exchange(handshake));
    CHECK(hub.log().wait_count(Event::Kind::connected, peer_identity.ski, 1, handshake));
    CHECK(hub.log().violations().empty());
}

TEST_CASE("AutoAccept turned on before the connection reaches hello accepts it", "[hub][trust]") {
    const auto identities = larger_and_smaller();
    const tls::Identity& hub_identity = identities.first;
    const tls::Identity& peer_identity = identities.second;
    Node hub("hub", hub_identity);
    PausedPeer peer(peer_identity);
    peer.dial(hub.port(), hub.ski());
    wait_registered(hub, peer);

    hub.call([](Hub& h) { h.set_auto_accept(true); });
    peer.go();
    CHECK(peer.wait_data_exchange(handshake));
    CHECK(hub.log().wait_count(Event::Kind::connected, peer_identity.ski, 1, handshake));
    CHECK(hub.call([&](Hub& h) {
        const auto p = h.peer(peer_identity.ski);
        return p && p->trusted;
    }));
}

TEST_CASE("An untrusted peer still waits in hello pending (control)", "[hub][trust]") {
    const auto identities = larger_and_smaller();
    const tls::Identity& hub_identity = identities.first;
    const tls::Identity& peer_identity = identities.second;
    Node hub("hub", hub_identity);
    PausedPeer peer(peer_identity);
    peer.dial(hub.port(), hub.ski());
    wait_registered(hub, peer);

    peer.go();
    REQUIRE(eventually(hub.log(), [&] {
        return hub.call([&](Hub& h) {
            const auto p = h.peer(peer_identity.ski);
            return p && p->state == PeerState::received_pairing_request;
        });
    }));
    CHECK_FALSE(peer.wait_data_exchange(std::chrono::milliseconds(500)));
    // The user's yes then completes it the ordinary way.
    REQUIRE_FALSE(hub.call([&](Hub& h) { return h.trust(peer_identity.ski); }));
    CHECK(peer.wait_data_exchange(handshake));
}

} // namespace ship::hub::it
