#include "hub/lws/strand_timers.hpp"

namespace ship::hub {

TimerService::Id StrandTimers::schedule(std::chrono::milliseconds delay, std::function<void()> callback) {
    const Id id = ++last_id_;
    auto timer = std::make_unique<net::Timer>(strand_, kind_);
    net::Timer& t = *timer;
    timers_.emplace(id, std::move(timer));
    t.start(delay, [this, id, cb = std::move(callback)]() mutable {
        // Forget the entry before the callback runs: it may schedule again, and a fired entry must not
        // linger.
        auto node = timers_.extract(id);
        auto run = std::move(cb);
        run();
    });
    return id;
}

} // namespace ship::hub
