#include "net/timer.hpp"

#include "net/detail.hpp"

namespace ship::net {

Timer::Timer(Strand& strand, Kind kind)
    : Timer(strand.core(), kind) {}

Timer::Timer(detail::StrandCore& strand, Kind kind)
    : core_(std::make_unique<detail::TimerCore>()) {
    core_->strand = &strand;
    core_->kind = kind;
    core_->timer = std::make_unique<LoopTimer>(strand.loop);
    strand.timers.insert(core_.get());
}

Timer::~Timer() {
    if (!core_->strand) return;
    SHIP_NET_ASSERT_ON_STRAND(*core_->strand);
    core_->strand->timers.erase(core_.get());
}

void Timer::start(std::chrono::microseconds delay, std::function<void()> callback) {
    if (!core_->strand) return;
    SHIP_NET_ASSERT_ON_STRAND(*core_->strand);
    detail::TimerCore* timer = core_.get();
    core_->timer->start(delay, [timer, callback = std::move(callback)] {
        if (!timer->strand) return;
        const bool allowed = timer->kind == Timer::Kind::shutdown ? timer->strand->owner_calls_allowed()
                                                                  : timer->strand->normal_timers_allowed();
        if (allowed) callback(); // LoopTimer moved it out first: it may restart or destroy this Timer
    });
}

void Timer::cancel() {
    if (!core_->strand) return;
    SHIP_NET_ASSERT_ON_STRAND(*core_->strand);
    core_->timer->cancel();
}

bool Timer::pending() const {
    return core_->timer && core_->timer->pending();
}

} // namespace ship::net
