#include "net/keep_alive.hpp"

#include <algorithm>

#include "net/detail.hpp"

namespace ship::net::detail {

KeepAlive::KeepAlive(StrandCore& core)
    : core_(core)
    , timer_(core, Timer::Kind::normal) {}

std::int64_t KeepAlive::second_of(Clock::time_point t) {
    return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::int64_t KeepAlive::due_second(Clock::time_point t) {
    // Rounded up: a ping or a hang-up may come up to a second late, never early.
    return std::chrono::ceil<std::chrono::seconds>(t.time_since_epoch()).count();
}

void KeepAlive::watch(LwsLink& link) {
    const auto now = Clock::now();
    LinkOps::stamp_valid(link, now);
    const auto& ping = LinkOps::ping_policy(link);
    place(link.id(), due_second(now + ping.ping_after));
    arm();
}

void KeepAlive::place(std::uint64_t link_id, std::int64_t due) {
    if (last_tick_ < 0) last_tick_ = second_of(Clock::now());
    if (due <= last_tick_) due = last_tick_ + 1; // that slot is done: the next one
    wheel_[static_cast<std::size_t>(due) % slots].push_back(link_id);
    ++count_;
}

void KeepAlive::arm() {
    if (count_ == 0) {
        timer_.cancel();
        next_ = -1;
        return;
    }
    const std::int64_t now = second_of(Clock::now());
    // The first slot after this second that holds anything; a link due in a later round waits there too.
    std::int64_t at = now + 1;
    while (wheel_[static_cast<std::size_t>(at) % slots].empty() &&
           at < now + static_cast<std::int64_t>(slots))
        ++at;
    if (timer_.pending() && next_ != -1 && next_ <= at) return;
    next_ = at;
    const auto when = Clock::time_point(std::chrono::seconds(at));
    timer_.start(std::chrono::duration_cast<std::chrono::microseconds>(when - Clock::now()),
                 [this] { tick(); });
}

void KeepAlive::tick() {
    next_ = -1;
    const auto now = Clock::now();
    const std::int64_t second = second_of(now);
    // The slots since the last tick (a late wake-up may have skipped some), at most one round.
    const std::int64_t from = std::max(last_tick_ + 1, second - static_cast<std::int64_t>(slots) + 1);
    last_tick_ = second;
    for (std::int64_t s = from; s <= second; ++s) {
        auto& slot = wheel_[static_cast<std::size_t>(s) % slots];
        if (slot.empty()) continue;
        auto ids = std::move(slot);
        slot = {};
        count_ -= ids.size();
        for (const auto id : ids) {
            auto it = core_.links.find(id);
            if (it == core_.links.end() || !it->second->is_open()) continue; // gone or closing: forget it
            LwsLink& link = *it->second;
            const auto& ping = LinkOps::ping_policy(link);
            const auto last = LinkOps::last_valid(link);
            const std::int64_t ping_due = due_second(last + ping.ping_after);
            const std::int64_t hang_up_due = due_second(last + ping.hang_up_after);
            if (second >= hang_up_due) {
                LinkOps::hang_up(link, "no pong for " + std::to_string(ping.hang_up_after.count()) +
                                           " s (ping timeout)");
                continue;
            }
            if (second >= ping_due) {
                LinkOps::send_ping(link);
                place(id, hang_up_due);
            } else {
                place(id, ping_due);
            }
        }
    }
    arm();
}

} // namespace ship::net::detail
