// Real Hubs on loopback with real TLS, each on its own strand thread, watched by an event log that checks the
// hub's event contract as it goes; plus scripted SHIP peers (lib/net + the SME) and a TCP tarpit.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "hub/hub.hpp"
#include "hub/lws/lws_network.hpp"
#include "hub/lws/strand_loop.hpp"
#include "net/client.hpp"
#include "net/link.hpp"
#include "net/strand.hpp"
#include "net/timer.hpp"
#include "ship/connection.hpp"
#include "tls/identity.hpp"

namespace ship::hub::it {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Every wait in these tests has a deadline; this one is generous enough for TSan on a busy 2-core machine.
inline constexpr std::chrono::milliseconds deadline = 20s;

// SHIPD_TEST_TIME_SCALE (tests/run.sh sets it for the sanitizer builds), at least 1: bounds a test asserts
// on, and the hub's verdict wait in these tests, are multiplied by it.
int time_scale();

// A wait that must never block forever (a strand call, run() returning) did: report and abort, since the
// test cannot unwind past a stuck strand thread.
[[noreturn]] void watchdog_abort(const std::string& what);

tls::Identity make_identity(const std::string& name);
// Two fresh identities, the one with the larger SKI first.
std::pair<tls::Identity, tls::Identity> larger_and_smaller();

// Log lines (info and above) containing `needle`, captured from the hub's spdlog output.
std::vector<std::string> logged(const std::string& needle);

// A seed whose first draws for the dial ladder fall inside the given windows, found by replaying SeededRandom
// exactly as the dial scheduler draws (one uniform draw per delay, in the range of that attempt number). Lets
// a test know when a reconnect timer fires without waiting for the worst case of 3 s or 10 s.
struct Draw {
    unsigned attempt;
    std::chrono::milliseconds min, max;
};
std::uint64_t seed_with_draws(const std::vector<Draw>& draws);

// A scratch directory, removed with everything in it.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// ------------------------------------------------------------------------------------------ event log

struct Event {
    enum class Kind { connected, disconnected, state, ship_id, discovered, data, added, changed, removed };
    Kind kind;
    std::string ski;
    std::string text; // reason, error, SHIP ID or JSON
    PeerState state = PeerState::none;
    Clock::time_point at = Clock::now(); // when the hub reported it
};

// Records every HubEvents call and checks the contract while it happens: each call comes from the strand,
// peer_connected/peer_disconnected alternate per SKI starting with connected, and nothing arrives once
// run() has returned. Queries and waits are for the test thread.
class EventLog final : public HubEvents {
public:
    explicit EventLog(const net::Strand& strand)
        : strand_(strand) {}

    void peer_connected(const std::string& ski) override;
    void peer_disconnected(const std::string& ski, const std::string& reason) override;
    void peer_state_changed(const std::string& ski, PeerState state, const std::string& error) override;
    void peer_ship_id_changed(const std::string& ski, const std::string& ship_id) override;
    void discovered_changed() override;
    void data_received(const std::string& ski, const std::string& json) override;
    void peer_added(const PeerInfo& peer) override;
    void peer_changed(const PeerInfo& peer) override;
    void peer_removed(const std::string& ski) override;

    std::vector<Event> events();
    int count(Event::Kind kind, const std::string& ski);
    // Contract breaches seen so far (empty = none).
    std::vector<std::string> violations();
    // Per the alternation: a peer_connected without its peer_disconnected yet.
    bool connected(const std::string& ski);
    std::vector<std::string> connected_skis();
    void mark_run_returned();

    // Waits until `predicate(events)` holds (re-checked on every event), or the timeout.
    bool wait(const std::function<bool(const std::vector<Event>&)>& predicate,
              std::chrono::milliseconds timeout = deadline);
    bool wait_count(Event::Kind kind, const std::string& ski, int n,
                    std::chrono::milliseconds timeout = deadline);
    // Wakes waiters without an event (used by polling waits).
    void wait_any(std::chrono::milliseconds at_most);

private:
    void record(Event event);

    const net::Strand& strand_;
    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Event> events_;
    std::map<std::string, bool> connected_;
    std::vector<std::string> violations_;
    bool run_returned_ = false;
};

// ------------------------------------------------------------------------------------------ hub node

struct NodeOptions {
    std::string ship_id; // empty: "hubit-<name>"
    DoubleConnectionRule rule = DoubleConnectionRule::spec;
    std::uint64_t seed = 1;
    std::chrono::milliseconds passive_wait = hub::passive_wait;
    std::chrono::milliseconds verdict_wait = ContestTimes{}.verdict_wait * time_scale();
    std::chrono::milliseconds probe_bound{2000};
    unsigned max_connections = 32;
    unsigned max_handshakes = 8;
    bool auto_accept = false;
    bool wait_for_trust = true;
    std::chrono::milliseconds connect_timeout{5000};
    std::string listen_address = "127.0.0.1"; // "" = every address (IPv4 and IPv6)
    ship::Timers ship_timers{};
    net::LinkSettings link{};
    std::chrono::milliseconds shutdown_bound{15000};
    // Written to trust.json before the hub loads it: (SKI, SHIP ID).
    std::vector<std::pair<std::string, std::string>> pre_trusted;
};

// One shipd hub: its own strand on its own thread, its own state directory, an EventLog.
class Node {
public:
    Node(std::string name, tls::Identity identity, NodeOptions options = {});
    ~Node(); // stops (if the test did not) and tears down on this thread once the strand is parked
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    const std::string& name() const { return name_; }
    const std::string& ski() const { return identity_.ski; }
    const tls::Identity& identity() const { return identity_; }
    std::uint16_t port() const { return port_; }
    EventLog& log() { return *log_; }
    net::Strand& strand() { return *strand_; }
    const std::filesystem::path& state_dir() const { return state_.path(); }

    // Queues fn(hub) on the strand; the future has its result.
    template <typename F>
    auto async(F&& fn) -> std::future<decltype(fn(std::declval<Hub&>()))> {
        using R = decltype(fn(std::declval<Hub&>()));
        auto task = std::make_shared<std::packaged_task<R()>>(
            [this, f = std::forward<F>(fn)]() mutable { return f(*hub_); });
        auto result = task->get_future();
        if (!strand_->post([task] { (*task)(); })) throw std::runtime_error(name_ + ": strand is stopping");
        return result;
    }

    // Runs fn(hub) on the strand and returns its result; aborts the test if the strand does not answer
    // within the deadline (a deadlock).
    template <typename F>
    auto call(F&& fn) -> decltype(fn(std::declval<Hub&>())) {
        auto result = async(std::forward<F>(fn));
        if (result.wait_for(deadline) != std::future_status::ready)
            watchdog_abort(name_ + ": the strand did not run a call within the deadline");
        return result.get();
    }

    // Runs fn(hub) on the strand at `when`, from a strand timer: a start as precise as the loop's.
    void at(Clock::time_point when, std::function<void(Hub&)> fn);

    // Trust `other` and tell where it listens (HubApi::trust + connect); REQUIREs success.
    void trust_and_connect(const Node& other);

    // Requests stop and waits (with a watchdog) until run() has returned; returns the time it took.
    std::chrono::milliseconds stop(std::chrono::milliseconds bound = deadline);
    // The two halves of stop(): request_stop() returns at once.
    void request_stop();
    std::chrono::milliseconds wait_stopped(std::chrono::milliseconds bound = deadline);
    bool stopped() const { return stopped_; }
    // Once stopped the strand is parked: the test thread may read the hub directly.
    Hub& parked_hub();

    // Holds the strand inside a posted closure (so it accepts, reads and answers nothing) until release()
    // or destruction.
    class Block {
    public:
        explicit Block(Node& node);
        ~Block() { release(); }
        Block(const Block&) = delete;
        Block& operator=(const Block&) = delete;
        void release();

    private:
        std::promise<void> release_;
        bool released_ = false;
    };

private:
    std::string name_;
    tls::Identity identity_;
    TempDir state_;
    std::stop_source stop_;
    std::unique_ptr<net::Strand> strand_;
    std::unique_ptr<EventLog> log_;
    std::unique_ptr<StrandLoop> loop_;
    std::unique_ptr<LwsNetwork> network_;
    std::unique_ptr<Hub> hub_;
    std::vector<std::unique_ptr<net::Timer>> timers_; // at(); strand only
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::promise<void> returned_;
    std::future<void> returned_future_;
    std::optional<Clock::time_point> stop_requested_;
    Clock::time_point stopped_at_;
    bool stopped_ = false;
};

// Waits until `condition()` (evaluated on the test thread, typically through Node::call) is true, waking on
// every event of `log` and at least every 20 ms; false at the timeout.
bool eventually(EventLog& log, const std::function<bool()>& condition,
                std::chrono::milliseconds timeout = deadline);

// Sends `marker` from `from` to `to` over whatever connection each registry holds, both ways, and waits
// for both to arrive: true only if both registries point at the same WebSocket (a message on any other
// link is dropped by the receiving hub, which passes on data only from its slot's owner).
bool same_link(Node& a, Node& b, const std::string& marker);

// ------------------------------------------------------------------------------------------ scripted peers

// Peers that dial a hub from their own strand through lib/net's Client: `silent` ones open the WebSocket
// and never speak (the hub waits for a CMI), `ship` ones run lib/ship's SME as SHIP client and answer a
// connectionClose announce. Every link's fate is recorded; queries are thread-safe.
class PeerPool {
public:
    // ship_late_confirm answers a connectionClose announce only after late_confirm; ship_no_confirm never.
    enum class Mode { silent, ship, ship_late_confirm, ship_no_confirm };
    static constexpr std::chrono::milliseconds late_confirm{200};
    struct Outcome {
        bool opened = false;
        bool data_exchange = false;
        std::optional<net::CloseInfo> closed;
        int close_announces = 0;                                 // connectionClose announce messages received
        std::vector<std::string> data;                           // plain JSON of data messages received
        std::optional<Clock::time_point> announce_at, closed_at; // first announce, the link's end
    };

    PeerPool();
    ~PeerPool(); // stops the strand and tears down

    // Adds a client identity (one net::Client each) and the SHIP ID its SHIP peers announce (default
    // "hubit-peer-<index>"); returns its index.
    std::size_t add_identity(const tls::Identity& identity, std::string ship_id = {});
    // Starts `count` dials at once (one strand call) to 127.0.0.1:port; returns the first link index.
    std::size_t dial(std::size_t identity, std::uint16_t port, const std::string& expected_ski, Mode mode,
                     std::size_t count = 1);
    // Sends plain JSON as SHIP data on a link in data exchange.
    bool send_data(std::size_t link, const std::string& json);
    void close(std::size_t link, std::uint16_t code, const std::string& reason);

    Outcome outcome(std::size_t link);
    std::vector<Outcome> outcomes();
    bool wait(const std::function<bool(const std::vector<Outcome>&)>& predicate,
              std::chrono::milliseconds timeout = deadline);

private:
    class Peer;
    template <typename F>
    auto call(F&& fn) -> decltype(fn());

    std::stop_source stop_;
    std::unique_ptr<net::Strand> strand_;
    std::thread thread_;
    std::vector<std::unique_ptr<net::Client>> clients_;
    std::vector<std::string> ship_ids_;
    std::vector<std::shared_ptr<Peer>> peers_; // strand only

    std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Outcome> outcomes_;
};

// A TCP listener that accepts and never speaks: a dial to it stays in flight inside TLS. Counts accepts and
// the connections the dialler gave up (EOF seen).
class Tarpit {
public:
    // On a free port of 127.0.0.1, or on `port` of `address` (IPv4).
    explicit Tarpit(std::uint16_t port = 0, const std::string& address = "127.0.0.1");
    ~Tarpit();
    Tarpit(const Tarpit&) = delete;
    Tarpit& operator=(const Tarpit&) = delete;
    std::uint16_t port() const { return port_; }
    int accepted() const;
    bool wait_accepted(int n, std::chrono::milliseconds timeout = deadline);
    int hung_up() const;
    bool wait_hung_up(int n, std::chrono::milliseconds timeout = deadline);
    std::optional<Clock::time_point> last_hung_up_at() const;

private:
    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    std::thread thread_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    int accepted_ = 0, hung_up_ = 0;
    std::optional<Clock::time_point> last_hung_up_at_;
    std::vector<int> fds_; // tarpit thread only
};

// A TCP relay in front of a hub's port that counts the connections made through it: one per dial, so a
// test can tell whether a link had to be dialled again.
class Relay {
public:
    explicit Relay(std::uint16_t target_port);
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;
    std::uint16_t port() const { return port_; }
    int connections() const;
    // While held, connections are accepted but not passed on: a dial through the relay stays in flight (at
    // TCP) until release().
    void hold();
    void release();

private:
    struct Pair {
        int fd[2];
        bool eof[2] = {false, false};
    };
    void serve();

    std::uint16_t target_;
    int listen_fd_ = -1;
    int wake_[2] = {-1, -1};
    std::uint16_t port_ = 0;
    std::thread thread_;
    mutable std::mutex mutex_;
    int connections_ = 0;
    bool held_ = false;
    std::vector<int> parked_; // relay thread only
};

std::string to_string(const std::vector<std::string>& lines);

} // namespace ship::hub::it
