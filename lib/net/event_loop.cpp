#include "net/event_loop.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "net/detail_loop.hpp"

// libev's watcher macros are C: casts and designated-member tricks the C++ warnings flag. They stay in here.
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wcast-align"
#pragma GCC diagnostic ignored "-Wdeprecated-enum-enum-conversion"

namespace ship::net {

namespace detail {

LoopCore::LoopCore()
    : thread(std::this_thread::get_id()) {
    // epoll explicitly: libev maps EPOLLERR/EPOLLHUP to "readable and writable", so a peer's last bytes
    // (a TLS alert, a WebSocket close frame) are still read before the reset is noticed.
    loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
    if (!loop) loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
    if (!loop) throw std::runtime_error("cannot create the event loop (libev)");
    ev_set_userdata(loop, this);
    ev_async_init(&async,
                  [](struct ev_loop* l, ev_async*, int) { static_cast<LoopCore*>(ev_userdata(l))->drain(); });
    ev_async_start(loop, &async);
}

LoopCore::~LoopCore() {
    std::deque<std::function<void()>> dropped;
    {
        std::lock_guard lock(post_mutex);
        accepting = false;
        dropped.swap(posted);
    }
    // Destroyed outside the lock: a closure's captures may take other locks as they die.
    dropped.clear();
    ev_async_stop(loop, &async);
    ev_loop_destroy(loop);
}

void LoopCore::drain() {
    std::deque<std::function<void()>> batch;
    {
        std::lock_guard lock(post_mutex);
        batch.swap(posted);
    }
    for (auto& fn : batch)
        fn();
}

} // namespace detail

// ---- EventLoop ----

EventLoop::EventLoop()
    : core_(std::make_unique<detail::LoopCore>()) {}

EventLoop::~EventLoop() = default;

bool EventLoop::post(std::function<void()> fn) {
    {
        // The one lock on the loop: another thread (the disk writer) appends, the loop thread swaps the queue
        // out. ev_async_send is the wake-up and is safe from any thread.
        std::lock_guard lock(core_->post_mutex);
        if (!core_->accepting) return false;
        core_->posted.push_back(std::move(fn));
    }
    ev_async_send(core_->loop, &core_->async);
    return true;
}

void EventLoop::adopt_thread() {
    core_->thread.store(std::this_thread::get_id(), std::memory_order_release);
}

void EventLoop::run() {
    adopt_thread();
    core_->stopped = false;
    while (!core_->stopped)
        if (!ev_run(core_->loop, EVRUN_ONCE) && !core_->stopped) {
            // Nothing left that could wake the loop (not even the post wake-up): a bug, not a wait.
            spdlog::error("event loop: nothing left to wait for; leaving");
            break;
        }
}

void EventLoop::stop() {
    core_->stopped = true;
    ev_break(core_->loop, EVBREAK_ALL);
}

void EventLoop::run_once_nowait() {
    ev_run(core_->loop, EVRUN_NOWAIT);
}

bool EventLoop::on_loop_thread() const noexcept {
    return core_->thread.load(std::memory_order_acquire) == std::this_thread::get_id();
}

void* EventLoop::native() const noexcept {
    return core_->loop;
}

std::chrono::milliseconds EventLoop::now() const noexcept {
    return std::chrono::milliseconds(static_cast<long long>(ev_now(core_->loop) * 1000.0));
}

// ---- IoWatch ----

struct IoWatch::Handle {
    ev_io watcher;
    struct ev_loop* loop;
    std::function<void(int)> callback;
};

IoWatch::IoWatch(EventLoop& loop, int fd, std::function<void(int ready)> callback)
    : handle_(new Handle{{}, loop.core().loop, std::move(callback)})
    , fd_(fd) {
    ev_io_init(
        &handle_->watcher,
        [](struct ev_loop*, ev_io* w, int revents) {
            auto* self = static_cast<Handle*>(w->data);
            int ready = 0;
            if (revents & EV_READ) ready |= readable;
            if (revents & EV_WRITE) ready |= writable;
            if (revents & EV_ERROR) ready |= readable | error;
            auto keep = self->callback; // the callback may destroy the IoWatch
            if (keep) keep(ready);
        },
        fd, 0);
    handle_->watcher.data = handle_;
}

IoWatch::~IoWatch() {
    ev_io_stop(handle_->loop, &handle_->watcher);
    delete handle_;
}

void IoWatch::set_events(int events) {
    if (events == events_) return;
    events_ = events;
    ev_io_stop(handle_->loop, &handle_->watcher);
    int ev_events = 0;
    if (events & readable) ev_events |= EV_READ;
    if (events & writable) ev_events |= EV_WRITE;
    if (ev_events == 0) return;
    ev_io_set(&handle_->watcher, fd_, ev_events);
    ev_io_start(handle_->loop, &handle_->watcher);
}

// ---- LoopTimer ----

struct LoopTimer::Handle {
    ev_timer watcher;
    struct ev_loop* loop;
    std::function<void()> callback;
};

LoopTimer::LoopTimer(EventLoop& loop)
    : handle_(new Handle{{}, loop.core().loop, {}}) {
    ev_timer_init(
        &handle_->watcher,
        [](struct ev_loop*, ev_timer* w, int) {
            auto* self = static_cast<Handle*>(w->data);
            auto fire = std::move(self->callback); // it may restart or destroy this timer
            self->callback = nullptr;
            if (fire) fire();
        },
        0., 0.);
    handle_->watcher.data = handle_;
}

LoopTimer::~LoopTimer() {
    ev_timer_stop(handle_->loop, &handle_->watcher);
    delete handle_;
}

void LoopTimer::start(std::chrono::microseconds delay, std::function<void()> callback) {
    ev_timer_stop(handle_->loop, &handle_->watcher);
    handle_->callback = std::move(callback);
    const double seconds = delay.count() <= 0 ? 0. : static_cast<double>(delay.count()) / 1e6;
    // libev counts from the time cached at the start of this loop turn; refresh it so a timer started late
    // in a long turn does not fire early.
    ev_now_update(handle_->loop);
    ev_timer_set(&handle_->watcher, seconds, 0.);
    ev_timer_start(handle_->loop, &handle_->watcher);
}

void LoopTimer::cancel() {
    ev_timer_stop(handle_->loop, &handle_->watcher);
    handle_->callback = nullptr;
}

bool LoopTimer::pending() const noexcept {
    return ev_is_active(&handle_->watcher) || ev_is_pending(&handle_->watcher);
}

// ---- SignalWatch ----

struct SignalWatch::Handle {
    ev_signal watcher;
    struct ev_loop* loop;
    std::function<void()> callback;
};

SignalWatch::SignalWatch(EventLoop& loop, int signum, std::function<void()> callback)
    : handle_(new Handle{{}, loop.core().loop, std::move(callback)}) {
    ev_signal_init(
        &handle_->watcher,
        [](struct ev_loop*, ev_signal* w, int) {
            auto* self = static_cast<Handle*>(w->data);
            auto keep = self->callback;
            if (keep) keep();
        },
        signum);
    handle_->watcher.data = handle_;
    ev_signal_start(handle_->loop, &handle_->watcher);
    // A signal watch alone does not keep the loop running.
    ev_unref(handle_->loop);
}

SignalWatch::~SignalWatch() {
    ev_ref(handle_->loop);
    ev_signal_stop(handle_->loop, &handle_->watcher);
    delete handle_;
}

// ---- TurnHook ----

struct TurnHook::Handle {
    ev_prepare watcher;
    struct ev_loop* loop;
    std::function<void()> callback;
};

TurnHook::TurnHook(EventLoop& loop, std::function<void()> callback)
    : handle_(new Handle{{}, loop.core().loop, std::move(callback)}) {
    ev_prepare_init(&handle_->watcher, [](struct ev_loop*, ev_prepare* w, int) {
        auto* self = static_cast<Handle*>(w->data);
        auto keep = self->callback;
        if (keep) keep();
    });
    handle_->watcher.data = handle_;
    ev_prepare_start(handle_->loop, &handle_->watcher);
    ev_unref(handle_->loop);
}

TurnHook::~TurnHook() {
    ev_ref(handle_->loop);
    ev_prepare_stop(handle_->loop, &handle_->watcher);
    delete handle_;
}

} // namespace ship::net
