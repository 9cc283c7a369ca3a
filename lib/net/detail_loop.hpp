// lib/net internals of the event loop (libev's loop and the post queue); never included outside lib/net.
// Everything here is loop-thread-confined except post_mutex and what it guards.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include <ev.h>

namespace ship::net::detail {

struct LoopCore {
    LoopCore();
    ~LoopCore();
    LoopCore(const LoopCore&) = delete;
    LoopCore& operator=(const LoopCore&) = delete;

    void drain(); // loop thread: runs what other threads posted

    struct ev_loop* loop = nullptr;
    ev_async async{};
    std::atomic<std::thread::id> thread;
    bool stopped = false;

    std::mutex post_mutex; // see EventLoop::post
    std::deque<std::function<void()>> posted;
    bool accepting = true; // guarded by post_mutex
};

} // namespace ship::net::detail
