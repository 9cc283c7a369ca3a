// The real Hub's surroundings for unit tests, on one virtual clock: a loop (stop, finish, posts, timers that
// go quiet at stop), a network of in-memory links, and peers that run a real ship::Connection on the far end.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "hub/double_connection.hpp"
#include "hub/ports.hpp"
#include "manual_timers.hpp"
#include "ship/connection.hpp"

namespace ship::hub::test {

// A clock's timers as the hub sees them: those of `closing` = false go quiet once stop is requested
// (net::Timer Kind::normal), the others keep firing (Kind::shutdown).
class GatedTimers final : public TimerService {
public:
    GatedTimers(ManualTimers& clock, const std::stop_source& stop, bool closing)
        : clock_(clock)
        , stop_(stop.get_token())
        , closing_(closing) {}
    Clock::time_point now() const override { return clock_.now(); }
    Id schedule(std::chrono::milliseconds delay, std::function<void()> callback) override {
        auto slot = std::make_shared<Id>(0);
        const Id id = clock_.schedule(delay, [this, slot, cb = std::move(callback)] {
            ids_.erase(*slot);
            if (!closing_ && stop_.stop_requested()) return;
            cb();
        });
        *slot = id;
        ids_.insert(id);
        return id;
    }
    void cancel(Id id) override {
        if (ids_.erase(id)) clock_.cancel(id);
    }
    std::size_t pending() const override { return ids_.size(); }

private:
    ManualTimers& clock_;
    std::stop_token stop_;
    bool closing_;
    std::set<Id> ids_;
};

class FakeLoop final : public HubLoop {
public:
    explicit FakeLoop(ManualTimers& clock)
        : timers_(clock, stop_, false)
        , closing_(clock, stop_, true)
        , token_(stop_.get_token()) {}

    const std::stop_token& stop_token() const override { return token_; }
    void on_stop(std::function<void()> handler) override { on_stop_ = std::move(handler); }
    void finish() override { finished = true; }
    // The trust store's disk writer posts its results from its own thread.
    bool post(std::function<void()> fn) override {
        // Cannot be avoided: the disk writer's thread hands results to the test thread through this queue.
        const std::lock_guard lock(mutex_);
        if (token_.stop_requested()) return false;
        posted_.push_back(std::move(fn));
        return true;
    }
    TimerService& timers() override { return timers_; }
    TimerService& closing_timers() override { return closing_; }

    void run_posted() {
        std::vector<std::function<void()>> run;
        {
            const std::lock_guard lock(mutex_);
            run.swap(posted_);
        }
        for (auto& fn : run)
            if (!token_.stop_requested()) fn();
    }
    // As the strand does on SIGTERM: the stop, then the owner's stop handler, once.
    void request_stop() {
        stop_.request_stop();
        if (auto handler = std::exchange(on_stop_, {})) handler();
    }
    bool finished = false;

private:
    std::stop_source stop_;
    GatedTimers timers_, closing_;
    std::stop_token token_;
    std::function<void()> on_stop_;
    std::mutex mutex_;
    std::vector<std::function<void()>> posted_;
};

class FakeNetwork;

// The hub's end of an in-memory WebSocket. The far end is a Peer's PeerEnd; everything between them travels
// with a delay on the virtual clock, in order per direction.
class FakeLink final : public net::Link {
public:
    enum class State { connecting, open, closing, closed };
    FakeLink(FakeNetwork& network, std::uint64_t id, ship::Role role, std::string ski,
             net::LinkHandler* handler)
        : network_(network)
        , id_(id)
        , role_(role)
        , ski_(std::move(ski))
        , remote_("192.0.2.1:4711")
        , handler_(handler) {}
    ~FakeLink() override;

    std::uint64_t id() const override { return id_; }
    ship::Role role() const override { return role_; }
    const std::string& peer_ski() const override { return ski_; }
    const std::string& peer_fingerprint() const override { return fingerprint_; }
    const std::string& remote_address() const override { return remote_; }
    const std::string& path() const override { return path_; }
    bool is_open() const override { return state == State::open; }
    bool is_closed() const override { return state == State::closed; }
    bool send(std::span<const std::uint8_t> message) override;
    std::size_t queued_messages() const override { return 0; }
    void close(std::uint16_t code, std::string_view reason) override;
    void close_at_once(std::uint16_t code, std::string_view reason) override { close(code, reason); }
    void abort(std::string_view reason) override { close(net::close_no_close_frame, reason); }
    void probe(std::chrono::milliseconds) override {} // the fake peers always answer pings
    void set_handler(net::LinkHandler* handler) override { handler_ = handler; }

    // From the network: the WebSocket is up, a message from the peer, the end (exactly once).
    void opened();
    void deliver(std::vector<std::uint8_t> message);
    void ended(net::CloseInfo info);

    State state = State::connecting;
    bool close_requested = false;
    int closed_reports = 0;
    std::string close_reason; // what the hub closed it with

private:
    FakeNetwork& network_;
    std::uint64_t id_;
    ship::Role role_;
    std::string ski_, remote_, path_ = "/ship/", fingerprint_;
    net::LinkHandler* handler_;
};

// One link as the peer sees it: a ship::Connection in the other role.
struct PeerEnd {
    std::uint64_t link_id = 0;
    bool peer_dialled = false; // the peer initiated it (incoming at the hub)
    bool open = false;         // the WebSocket is up and not yet ended at the peer
    std::unique_ptr<ship::Connection> sme;
    TimerService::Id deadline = 0;
    std::optional<TimerService::Clock::time_point> armed_for;
    bool data_exchange = false;
    TimerService::Clock::time_point data_exchange_since{};
};

// The world the hub lives in. Strand-confined like the hub: the test's thread.
class FakeNetwork final : public Network {
public:
    struct Options {
        DoubleConnectionRule peer_rule =
            DoubleConnectionRule::spec; // how every peer settles double connections
        std::string local_ski;          // the hub's
        int dial_success_percent = 70;
    };

    FakeNetwork(ManualTimers& clock, const std::stop_token& stop, std::uint64_t seed, Options options)
        : clock_(clock)
        , stop_(stop)
        , rng_(seed)
        , options_(std::move(options)) {}

    // Network
    void listen(ListenHooks hooks) override { hooks_ = std::move(hooks); }
    std::shared_ptr<net::Link> dial(const net::DialRequest& request, net::LinkHandler& handler) override;
    std::uint16_t port() const override { return 4711; }
    std::vector<std::string> addresses() const override { return {"192.0.2.1:4711"}; }
    void release() override {
        released_ = true;
        hooks_ = {};
    }

    // What a peer does.
    void peer_dials(const std::string& ski);
    // The peer ends one of its links: politely (SHIP close) or by dropping the TCP connection.
    void peer_ends_one(const std::string& ski, bool politely);

    // From FakeLink.
    void to_peer(std::uint64_t link_id, std::vector<std::uint8_t> message);
    void closed_by_hub(std::uint64_t link_id, std::uint16_t code, const std::string& reason, bool was_open);
    void dropped_by_hub(std::uint64_t link_id);

    int delay_ms() { return std::uniform_int_distribution<int>(1, 20)(rng_); }
    bool chance(int percent) { return std::uniform_int_distribution<int>(1, 100)(rng_) <= percent; }

    // Problems found on the way (the test fails on any).
    std::vector<std::string> violations;
    int double_closes = 0;    // the hub closed a link as a double connection while the peer had another
    int peer_rule_closes = 0; // the peer closed one of two links by its own rule
    std::map<std::uint64_t, std::weak_ptr<FakeLink>> links; // every hub-side link ever made
    std::size_t ends_in_data_exchange(const std::string& ski) const;
    // Links in data exchange at the peer for at least `settled`, whose hub end is open and not closing: the
    // ones the hub must count as this peer's connection.
    std::size_t settled_links(const std::string& ski, std::chrono::milliseconds settled) const;

private:
    struct Peer {
        std::map<std::uint64_t, PeerEnd> ends;
    };
    // Delivery in order per link and direction: the next delivery is never before the previous one.
    void later(std::uint64_t link_id, bool to_hub, std::function<void()> fn);
    std::shared_ptr<FakeLink> hub_end(std::uint64_t link_id) const;
    PeerEnd* end_of(std::uint64_t link_id, std::string* ski = nullptr);
    void start_end(const std::string& ski, std::uint64_t link_id);
    void run_end(const std::string& ski, std::uint64_t link_id);
    void arm_end(const std::string& ski, std::uint64_t link_id);
    void end_gone(const std::string& ski, std::uint64_t link_id, const std::string& reason);
    void peer_applies_rule(const std::string& ski, std::uint64_t newest);
    void peer_decides(const std::string& ski, std::uint64_t newest);
    void check_double_close(const std::string& ski, std::uint64_t link_id, const std::string& reason);

    ManualTimers& clock_;
    std::stop_token stop_;
    std::mt19937_64 rng_;
    Options options_;
    ListenHooks hooks_;
    bool released_ = false;
    std::uint64_t last_id_ = 0;
    std::map<std::string, Peer> peers_;
    std::map<std::pair<std::uint64_t, bool>, TimerService::Clock::time_point> last_delivery_;
};

} // namespace ship::hub::test
