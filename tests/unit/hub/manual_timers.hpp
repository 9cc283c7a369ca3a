// A virtual clock for unit tests: timers fire only when the test advances time, in due order, each after
// being removed from the table. It can be told to ignore cancel() to prove callbacks guard themselves.
#pragma once

#include <map>
#include <utility>

#include "hub/timers.hpp"

namespace ship::hub::test {

class ManualTimers final : public TimerService {
public:
    Clock::time_point now() const override { return now_; }

    Id schedule(std::chrono::milliseconds delay, std::function<void()> callback) override {
        const Id id = ++last_id_;
        timers_.emplace(id, Timer{now_ + delay, std::move(callback)});
        last_delay_ = delay;
        return id;
    }

    void cancel(Id id) override {
        ++cancels_;
        if (!ignore_cancel_) timers_.erase(id);
    }

    // Fires every timer due up to now + d, in due order (ties: schedule order), moving the clock to each.
    void advance(std::chrono::milliseconds d) {
        const auto until = now_ + d;
        while (true) {
            auto next = timers_.end();
            for (auto it = timers_.begin(); it != timers_.end(); ++it)
                if (it->second.due <= until && (next == timers_.end() || it->second.due < next->second.due))
                    next = it;
            if (next == timers_.end()) break;
            now_ = std::max(now_, next->second.due);
            auto callback = std::move(next->second.callback);
            timers_.erase(next);
            callback();
        }
        now_ = until;
    }

    // Runs every timer still in the table regardless of its due time (as a broken timer service might).
    void fire_all_now() {
        while (!timers_.empty()) {
            auto it = timers_.begin();
            auto callback = std::move(it->second.callback);
            timers_.erase(it);
            callback();
        }
    }

    std::size_t pending() const override { return timers_.size(); }
    std::chrono::milliseconds last_delay() const { return last_delay_; }
    void ignore_cancel(bool on) { ignore_cancel_ = on; }
    std::chrono::milliseconds elapsed() const {
        return std::chrono::duration_cast<std::chrono::milliseconds>(now_ - Clock::time_point{});
    }

private:
    struct Timer {
        Clock::time_point due;
        std::function<void()> callback;
    };
    Clock::time_point now_{};
    Id last_id_ = 0;
    std::map<Id, Timer> timers_;
    std::chrono::milliseconds last_delay_{-1};
    std::size_t cancels_ = 0;
    bool ignore_cancel_ = false;
};

// Always the low or the high end of the range: pins delays to the edges.
class EdgeRandom final : public RandomSource {
public:
    explicit EdgeRandom(bool high)
        : high_(high) {}
    std::int64_t uniform(std::int64_t lo, std::int64_t hi) override { return high_ ? hi : lo; }

private:
    bool high_;
};

} // namespace ship::hub::test
