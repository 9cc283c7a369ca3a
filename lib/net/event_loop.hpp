// The one event loop of the process: a single thread on libev (epoll underneath) that watches file
// descriptors, runs timers, signal handlers and a hook before every wait, and takes closures from other
// threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace ship::net {

namespace detail {
struct LoopCore;
}

// Every member but post() is for the loop's own thread. The thread that constructs the loop is its thread
// until run() is called on another one (run() takes the calling thread).
class EventLoop {
public:
    EventLoop();
    // IoWatch, LoopTimer, SignalWatch and TurnHook objects must be gone by then. Closures still queued by
    // post() are dropped unrun.
    ~EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    // Any thread. Queues `fn` to run on the loop thread, in order, on a later turn. False (and `fn` dropped)
    // once the loop is closing.
    bool post(std::function<void()> fn);

    // Runs until stop(); the calling thread becomes the loop thread.
    void run();
    // The calling thread becomes the loop thread now (run() does this too; for work just before it).
    void adopt_thread();
    // Loop thread: run() returns once the current callback has returned.
    void stop();
    // Loop thread: one non-blocking turn (what is ready runs, timers that are due fire). For teardown.
    void run_once_nowait();

    bool on_loop_thread() const noexcept;
    // The libev loop (struct ev_loop*), for libraries that run on a foreign loop (libwebsockets).
    void* native() const noexcept;
    // The loop's cached time, as libev sees it (updated once per turn).
    std::chrono::milliseconds now() const noexcept;

    detail::LoopCore& core() const { return *core_; }

private:
    std::unique_ptr<detail::LoopCore> core_;
};

// Readiness of one file descriptor (ev_io). The callback runs on the loop thread with what is ready; it may
// change the events or destroy this watch.
class IoWatch {
public:
    static constexpr int readable = 1;
    static constexpr int writable = 2;
    static constexpr int error = 4; // the fd failed (reported together with readable)

    IoWatch(EventLoop& loop, int fd, std::function<void(int ready)> callback);
    ~IoWatch();
    IoWatch(const IoWatch&) = delete;
    IoWatch& operator=(const IoWatch&) = delete;

    // readable | writable, or 0 to pause.
    void set_events(int events);
    int events() const noexcept { return events_; }
    int fd() const noexcept { return fd_; }

private:
    struct Handle;
    Handle* handle_;
    int fd_;
    int events_ = 0;
};

// A one-shot timer on the loop (libev's 4-heap: O(log n) to arm). Destroying or cancelling it guarantees the
// callback never runs afterwards. The callback may restart or destroy the timer.
class LoopTimer {
public:
    explicit LoopTimer(EventLoop& loop);
    ~LoopTimer();
    LoopTimer(const LoopTimer&) = delete;
    LoopTimer& operator=(const LoopTimer&) = delete;

    void start(std::chrono::microseconds delay, std::function<void()> callback);
    void cancel();
    bool pending() const noexcept;

private:
    struct Handle;
    Handle* handle_;
};

// Runs `callback` on the loop thread each time `signum` arrives (libev's signal watcher: the signal handler
// only writes to a pipe; the callback runs as a normal loop event).
class SignalWatch {
public:
    SignalWatch(EventLoop& loop, int signum, std::function<void()> callback);
    ~SignalWatch();
    SignalWatch(const SignalWatch&) = delete;
    SignalWatch& operator=(const SignalWatch&) = delete;

private:
    struct Handle;
    Handle* handle_;
};

// Runs `callback` once per loop turn, right before the loop waits for events: where work batched during the
// turn is flushed (D-Bus property updates) and where a bus connection's poll events are re-armed.
class TurnHook {
public:
    TurnHook(EventLoop& loop, std::function<void()> callback);
    ~TurnHook();
    TurnHook(const TurnHook&) = delete;
    TurnHook& operator=(const TurnHook&) = delete;

private:
    struct Handle;
    Handle* handle_;
};

} // namespace ship::net
