#include "net/timer.hpp"

#include "net/detail.hpp"

namespace ship::net {

namespace {

void fire(lws_sorted_usec_list_t* sul) {
    // sul is the first member of the standard-layout Node, so the two pointers are interconvertible.
    auto* timer = reinterpret_cast<detail::TimerCore::Node*>(sul)->owner;
    timer->pending = false;
    if (!timer->strand) return;
    const bool allowed = timer->kind == Timer::Kind::shutdown ? timer->strand->owner_calls_allowed()
                                                              : timer->strand->normal_timers_allowed();
    if (!allowed) return;
    // Moved out first: the callback may destroy or restart this Timer.
    auto callback = std::move(timer->callback);
    timer->callback = nullptr;
    if (callback) callback();
}

} // namespace

Timer::Timer(Strand& strand, Kind kind)
    : Timer(strand.core(), kind) {}

Timer::Timer(detail::StrandCore& strand, Kind kind)
    : core_(std::make_unique<detail::TimerCore>()) {
    core_->strand = &strand;
    core_->kind = kind;
    core_->node.owner = core_.get();
    strand.timers.insert(core_.get());
}

Timer::~Timer() {
    if (!core_->strand) return;
    SHIP_NET_ASSERT_ON_STRAND(*core_->strand);
    if (core_->pending) lws_sul_cancel(&core_->node.sul);
    core_->strand->timers.erase(core_.get());
}

void Timer::start(std::chrono::microseconds delay, std::function<void()> callback) {
    if (!core_->strand) return;
    SHIP_NET_ASSERT_ON_STRAND(*core_->strand);
    core_->callback = std::move(callback);
    core_->pending = true;
    // lws_sul_schedule re-inserts a node that is already scheduled.
    lws_sul_schedule(core_->strand->context, 0, &core_->node.sul, &fire,
                     delay.count() < 0 ? 0 : delay.count());
}

void Timer::cancel() {
    if (!core_->strand) return;
    SHIP_NET_ASSERT_ON_STRAND(*core_->strand);
    if (core_->pending) lws_sul_cancel(&core_->node.sul);
    core_->pending = false;
    core_->callback = nullptr;
}

bool Timer::pending() const {
    return core_->pending;
}

} // namespace ship::net
