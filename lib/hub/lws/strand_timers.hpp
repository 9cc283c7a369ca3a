// The hub's TimerService on the real strand: one-shot lws_sul timers (net::Timer) in a table whose entries
// remove themselves when they fire, so an idle hub holds no timer at all. Strand only.
#pragma once

#include <map>
#include <memory>

#include "hub/timers.hpp"
#include "net/timer.hpp"

namespace ship::net {
class Strand;
}

namespace ship::hub {

class StrandTimers final : public TimerService {
public:
    // `kind` as net::Timer's: `normal` timers stop with the strand, `shutdown` ones still fire while it
    // drains.
    explicit StrandTimers(net::Strand& strand, net::Timer::Kind kind = net::Timer::Kind::normal)
        : strand_(strand)
        , kind_(kind) {}

    Clock::time_point now() const override { return Clock::now(); }
    Id schedule(std::chrono::milliseconds delay, std::function<void()> callback) override;
    void cancel(Id id) override { timers_.erase(id); }
    std::size_t pending() const override { return timers_.size(); }

private:
    net::Strand& strand_;
    net::Timer::Kind kind_;
    Id last_id_ = 0;
    std::map<Id, std::unique_ptr<net::Timer>> timers_;
};

} // namespace ship::hub
