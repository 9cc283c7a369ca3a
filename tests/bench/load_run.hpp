// One shipbench run on the strand: N SHIP client connections, C in their handshake at a time, each with its
// own certificate, driven to data exchange, then M data messages each; timings and failure reasons recorded.
// Every data message carries its send time (steady_clock ns) in msgCounter, and so may every one it receives.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hub/lws/strand_timers.hpp"
#include "net/client.hpp"
#include "net/strand.hpp"
#include "net/timer.hpp"
#include "tls/identity.hpp"

namespace ship::bench {

using Clock = std::chrono::steady_clock;

struct LoadPlan {
    std::string host;
    std::uint16_t port = 0;
    std::string ski; // the daemon's SKI: every dial checks it inside the TLS handshake
    std::size_t concurrency = 1;
    std::size_t messages = 0;
    // 0: send the M messages at once (throughput); else one every `interval` per connection (latency).
    std::chrono::microseconds interval{0};
    bool hold = false; // keep the connections in data exchange instead of closing them politely
    // With hold: the run is done only once this many data messages arrived from the daemon (app → peer path).
    std::size_t expect_received = 0;
    std::chrono::milliseconds deadline{60'000};
    // Called on the strand after each completed handshake with the count so far (progress sampling).
    std::function<void(std::size_t completed)> on_completed;
};

struct LoadResult {
    std::vector<double> handshake_ms; // TCP connect → data exchange, one per completed connection
    std::size_t completed = 0;
    std::size_t messages_sent = 0;
    std::size_t messages_received = 0;
    std::vector<double> receive_ms; // send stamp in msgCounter → arrival here, one per stamped message
    Clock::time_point first_received{}, last_received{};
    Clock::time_point first_dial{}, last_completed{}, first_send{}, last_flushed{};
    std::map<std::string, std::size_t> failures; // reason → count
};

// Strand only (built and started on it); `done` runs on the strand once every connection is held, closed
// or failed (or the deadline passed).
class LoadRun {
public:
    LoadRun(net::Strand& strand, LoadPlan plan, std::vector<tls::Identity> identities,
            std::function<void()> done);
    ~LoadRun();
    LoadRun(const LoadRun&) = delete;
    LoadRun& operator=(const LoadRun&) = delete;

    void start();
    const LoadResult& result() const { return result_; }
    std::size_t open_sessions() const;

private:
    struct Slot;
    void launch_next();
    void settled(Slot& slot); // the slot left the handshake (completed or failed)
    void finished(Slot& slot);
    void check_done();

    net::Strand& strand_;
    // The connections' SHIP deadlines; kind shutdown, so the close bounds still run while the strand drains.
    hub::StrandTimers ship_timers_;
    LoadPlan plan_;
    std::vector<tls::Identity> identities_;
    std::function<void()> done_;
    std::vector<std::unique_ptr<Slot>> slots_;
    void received(const std::string& json);

    std::size_t next_ = 0, in_handshake_ = 0, finished_ = 0;
    bool done_called_ = false;
    net::Timer deadline_;
    LoadResult result_;
};

} // namespace ship::bench
