// The strand: one thread runs the event loop (libev, with libwebsockets, D-Bus and Avahi on it) and owns
// every piece of hub state; other threads reach it only through post(). Stop (a std::stop_token) ends it as
// below.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>

namespace ship::net {

class EventLoop;

namespace detail {
struct StrandCore;
}

struct StrandOptions {
    // After stop is requested, run() returns at the latest this long later even if the owner never calls
    // finish() (a peer that does not answer a polite close must not hold the daemon).
    std::chrono::milliseconds shutdown_bound{3000};
};

// Stop contract (what the hub builds "every connection gets one polite close, then the strand exits" on):
//  1. request_stop() on the owner's stop_source may come from any thread. The strand wakes at once.
//  2. From then on closures handed to post() are discarded without running (also those queued before the
//     stop but not yet run) — destroyed on the strand — and Timers of kind `normal` never fire again.
//  3. Once, on the strand, the handler given to on_stop() runs. It starts the polite closes (Link::close,
//     the SHIP close of each connection), cancels in-flight dials and refuses new work. Link events (opened,
//     message, closed) keep being delivered, and Timers of kind `shutdown` keep firing, so a close handshake
//     can finish. New incoming connections are refused (HTTP 503) and Client::dial returns null.
//  4. The owner calls finish() when its last connection reported closed. run() returns at finish(), or when
//     StrandOptions::shutdown_bound has passed since the stop, whichever comes first. Without an on_stop
//     handler run() returns right after the stop.
//  5. After run() returns nothing calls back into the owner any more: no Link handler, no Timer, no posted
//     closure, also not while ~Strand tears the libwebsockets context down. The strand is then parked:
//     one thread that has joined the runner (or the runner itself) drops the Links, Servers, Clients and
//     Timers in any order; ~Strand comes last.
class Strand {
public:
    explicit Strand(std::stop_token stop, StrandOptions options = {});
    ~Strand();
    Strand(const Strand&) = delete;
    Strand& operator=(const Strand&) = delete;

    // Any thread. Queues `fn` to run on the strand. Only for what truly comes from another thread (the disk
    // writer's results, tests): everything on the loop calls the hub directly. Returns false if stop was
    // already requested (then `fn` is dropped unrun — destroyed on the strand, never on the caller's thread);
    // true does not promise it runs: a stop that comes first discards it (contract 2).
    bool post(std::function<void()> fn);

    // Blocks; the calling thread is the strand until run() returns. Call once. Before run() the thread that
    // constructed the Strand counts as the strand (to build servers and clients before the loop starts).
    void run();

    // True on the strand's thread (and for anyone once it is parked, contract 5). Every strand-only entry
    // point asserts it in debug builds.
    bool is_on_strand() const noexcept;

    // The loop the strand runs: D-Bus, Avahi and signals are serviced on it too.
    EventLoop& loop() const;

    // --- strand only ---
    void on_stop(std::function<void()> handler);
    void finish();
    bool stopping() const; // stop was requested (the on_stop handler has run or is about to)
    const std::stop_token& stop_token() const;

    detail::StrandCore& core() const { return *core_; }

private:
    std::unique_ptr<detail::StrandCore> core_;
};

} // namespace ship::net
