// An AvahiPoll on shipd's event loop: Avahi's watches become IoWatch objects and its timeouts LoopTimers, so
// the Avahi client runs on the loop thread like everything else (no avahi_threaded_poll, no lock).
#pragma once

#include <avahi-common/watch.h>

namespace ship::net {
class EventLoop;
}

namespace ship::mdns {

// Loop thread only. Outlive every Avahi object made with api() (free the client first).
class LoopPoll {
public:
    explicit LoopPoll(net::EventLoop& loop);
    LoopPoll(const LoopPoll&) = delete;
    LoopPoll& operator=(const LoopPoll&) = delete;

    const AvahiPoll* api() const noexcept { return &api_; }
    net::EventLoop& loop() const noexcept { return loop_; }

private:
    net::EventLoop& loop_;
    AvahiPoll api_{};
};

} // namespace ship::mdns
