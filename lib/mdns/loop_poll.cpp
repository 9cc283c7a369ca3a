#include "mdns/loop_poll.hpp"

#include <sys/time.h>

#include <chrono>
#include <memory>

#include "net/event_loop.hpp"

// Avahi declares these opaque; each poll implementation defines them.
struct AvahiWatch {
    std::unique_ptr<ship::net::IoWatch> io;
    AvahiWatchCallback callback;
    void* userdata;
    AvahiWatchEvent last = AvahiWatchEvent{};
};

struct AvahiTimeout {
    std::unique_ptr<ship::net::LoopTimer> timer;
    AvahiTimeoutCallback callback;
    void* userdata;
};

namespace ship::mdns {

namespace {

net::EventLoop& loop_of(const AvahiPoll* api) {
    return static_cast<LoopPoll*>(api->userdata)->loop();
}

int to_loop(AvahiWatchEvent event) {
    int events = 0;
    if (event & AVAHI_WATCH_IN) events |= net::IoWatch::readable;
    if (event & AVAHI_WATCH_OUT) events |= net::IoWatch::writable;
    return events;
}

AvahiWatch* watch_new(const AvahiPoll* api, int fd, AvahiWatchEvent event, AvahiWatchCallback callback,
                      void* userdata) {
    auto* watch = new AvahiWatch{nullptr, callback, userdata};
    watch->io = std::make_unique<net::IoWatch>(loop_of(api), fd, [watch, fd](int ready) {
        int happened = 0;
        if (ready & net::IoWatch::readable) happened |= AVAHI_WATCH_IN;
        if (ready & net::IoWatch::writable) happened |= AVAHI_WATCH_OUT;
        if (ready & net::IoWatch::error) happened |= AVAHI_WATCH_ERR;
        watch->last = static_cast<AvahiWatchEvent>(happened);
        // The callback may free this watch; nothing touches it afterwards.
        watch->callback(watch, fd, watch->last, watch->userdata);
    });
    watch->io->set_events(to_loop(event));
    return watch;
}

void watch_update(AvahiWatch* watch, AvahiWatchEvent event) {
    watch->io->set_events(to_loop(event));
}

AvahiWatchEvent watch_get_events(AvahiWatch* watch) {
    return watch->last;
}

void watch_free(AvahiWatch* watch) {
    delete watch;
}

// Avahi's times are absolute, on gettimeofday's clock (avahi_elapse_time); null disables the timeout.
void arm(AvahiTimeout* timeout, const struct timeval* when) {
    if (!when) {
        timeout->timer->cancel();
        return;
    }
    timeval now{};
    gettimeofday(&now, nullptr);
    const auto delay = std::chrono::seconds(when->tv_sec - now.tv_sec) +
                       std::chrono::microseconds(when->tv_usec - now.tv_usec);
    timeout->timer->start(std::chrono::duration_cast<std::chrono::microseconds>(delay), [timeout] {
        timeout->callback(timeout, timeout->userdata); // may free or re-arm it
    });
}

AvahiTimeout* timeout_new(const AvahiPoll* api, const struct timeval* when, AvahiTimeoutCallback callback,
                          void* userdata) {
    auto* timeout = new AvahiTimeout{std::make_unique<net::LoopTimer>(loop_of(api)), callback, userdata};
    arm(timeout, when);
    return timeout;
}

void timeout_update(AvahiTimeout* timeout, const struct timeval* when) {
    arm(timeout, when);
}

void timeout_free(AvahiTimeout* timeout) {
    delete timeout;
}

} // namespace

LoopPoll::LoopPoll(net::EventLoop& loop)
    : loop_(loop) {
    api_.userdata = this;
    api_.watch_new = &watch_new;
    api_.watch_update = &watch_update;
    api_.watch_get_events = &watch_get_events;
    api_.watch_free = &watch_free;
    api_.timeout_new = &timeout_new;
    api_.timeout_update = &timeout_update;
    api_.timeout_free = &timeout_free;
}

} // namespace ship::mdns
