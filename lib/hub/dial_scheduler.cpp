#include "hub/dial_scheduler.hpp"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace ship::hub {

using std::chrono::milliseconds;

DelayRange attempt_delay(unsigned attempt) {
    switch (attempt) {
    case 0:
        return {milliseconds{0}, milliseconds{3'000}};
    case 1:
        return {milliseconds{3'000}, milliseconds{10'000}};
    default:
        return {milliseconds{10'000}, milliseconds{20'000}};
    }
}

namespace detail {

struct DialState : std::enable_shared_from_this<DialState> {
    struct Entry {
        unsigned attempts = 0;
        TimerService::Id timer = 0;
        std::uint64_t in_flight = 0; // attempt id of the dial in flight, 0 = none
        bool cancel_requested = false;
        bool forgotten = false; // untrusted while a dial was in flight: erase when it ends
        std::function<void()> cancel;
    };

    DialState(TimerService& t, RandomSource& r, std::stop_token s, DialScheduler::Hooks h)
        : timers(t)
        , random(r)
        , stop(std::move(s))
        , hooks(std::move(h)) {}

    bool stopping() const { return stopped || stop.stop_requested(); }

    void schedule(const std::string& ski, Entry& entry, std::optional<milliseconds> delay) {
        if (!delay) {
            const DelayRange range = attempt_delay(entry.attempts);
            delay = milliseconds{random.uniform(range.min.count(), range.max.count())};
            if (entry.attempts < 2) ++entry.attempts; // the ladder's last rung repeats forever
        }
        std::weak_ptr<DialState> weak = weak_from_this();
        auto id = std::make_shared<TimerService::Id>(0);
        *id = timers.schedule(*delay, [weak, ski, id] {
            if (auto self = weak.lock()) self->fired(ski, *id);
        });
        entry.timer = *id;
        spdlog::debug("dial to SKI {} in {} ms", ski, delay->count());
    }

    void request(const std::string& ski, std::optional<milliseconds> delay) {
        if (stopping()) return;
        Entry& entry = entries[ski];
        entry.forgotten = false;
        if (entry.in_flight != 0) return;
        if (entry.timer != 0) {
            if (!delay) return;
            timers.cancel(std::exchange(entry.timer, 0));
        }
        schedule(ski, entry, delay);
    }

    void fired(const std::string& ski, TimerService::Id id) {
        if (stopping()) return;
        auto it = entries.find(ski);
        if (it == entries.end() || it->second.timer != id) return; // stale: cancelled or replaced
        it->second.timer = 0;
        // Early ends below set nothing: no marker exists until the ticket does.
        if (!hooks.wants_dial(ski)) return;
        std::optional<PeerAddress> address = hooks.address_for(ski);
        if (!address) {
            spdlog::debug("no address known for SKI {} yet", ski);
            schedule(ski, it->second, std::nullopt);
            return;
        }
        const std::uint64_t attempt = ++last_attempt;
        it->second.in_flight = attempt;
        it->second.cancel_requested = false;
        ++live_tickets;
        std::function<void()> cancel;
        try {
            cancel = hooks.dial(ski, *address, DialTicket(weak_from_this(), ski, attempt));
        } catch (const std::exception& e) {
            // The ticket already ended during unwinding and scheduled the next attempt.
            spdlog::warn("dial to SKI {} at {}:{} failed to start: {}", ski, address->host, address->port,
                         e.what());
            return;
        }
        it = entries.find(ski);
        if (it != entries.end() && it->second.in_flight == attempt) it->second.cancel = std::move(cancel);
    }

    // A ticket ended. True if the connection it reports may be registered.
    bool end_attempt(const std::string& ski, std::uint64_t attempt, bool connected) {
        --live_tickets;
        auto it = entries.find(ski);
        if (it == entries.end() || it->second.in_flight != attempt) return false;
        Entry& entry = it->second;
        const bool cancelled = std::exchange(entry.cancel_requested, false);
        entry.in_flight = 0;
        std::function<void()> cancel = std::move(entry.cancel); // destroyed last: it may own the dialer
        if (entry.forgotten) {
            entries.erase(it);
            return false;
        }
        const bool may_register = connected && !cancelled && !stopping();
        if (!may_register && !stopping()) schedule(ski, entry, std::nullopt);
        return may_register;
    }

    static void run_cancel(std::function<void()> cancel) {
        if (cancel) cancel();
    }

    TimerService& timers;
    RandomSource& random;
    std::stop_token stop;
    DialScheduler::Hooks hooks;
    bool stopped = false;
    std::uint64_t last_attempt = 0;
    std::size_t live_tickets = 0;
    std::map<std::string, Entry, std::less<>> entries;
};

} // namespace detail

DialTicket::DialTicket(DialTicket&& other) noexcept
    : state_(std::move(other.state_))
    , ski_(std::move(other.ski_))
    , attempt_(std::exchange(other.attempt_, 0)) {}

DialTicket& DialTicket::operator=(DialTicket&& other) noexcept {
    if (this != &other) {
        release();
        state_ = std::move(other.state_);
        ski_ = std::move(other.ski_);
        attempt_ = std::exchange(other.attempt_, 0);
    }
    return *this;
}

DialTicket::~DialTicket() {
    release();
}

bool DialTicket::connected() {
    // Take everything out of *this first: ending the attempt may destroy whoever holds this ticket.
    auto state = std::exchange(state_, {}).lock();
    const std::uint64_t attempt = std::exchange(attempt_, 0);
    if (!state || attempt == 0) return false;
    return state->end_attempt(std::string(ski_), attempt, true);
}

void DialTicket::release() noexcept {
    auto state = std::exchange(state_, {}).lock();
    const std::uint64_t attempt = std::exchange(attempt_, 0);
    if (state && attempt != 0) state->end_attempt(std::string(ski_), attempt, false);
}

DialScheduler::DialScheduler(TimerService& timers, RandomSource& random, std::stop_token stop, Hooks hooks)
    : state_(std::make_shared<detail::DialState>(timers, random, std::move(stop), std::move(hooks))) {}

DialScheduler::~DialScheduler() {
    for (auto& [ski, entry] : state_->entries)
        if (entry.timer != 0) state_->timers.cancel(entry.timer);
}

void DialScheduler::request(const std::string& ski) {
    state_->request(ski, std::nullopt);
}

void DialScheduler::request_now(const std::string& ski) {
    state_->request(ski, milliseconds{0});
}

void DialScheduler::handshake_completed(const std::string& ski) {
    auto it = state_->entries.find(ski);
    if (it == state_->entries.end()) return;
    it->second.attempts = 0;
    if (it->second.timer != 0) state_->timers.cancel(std::exchange(it->second.timer, 0));
}

bool DialScheduler::cancel_dial(const std::string& ski) {
    auto it = state_->entries.find(ski);
    if (it == state_->entries.end() || it->second.in_flight == 0 || it->second.cancel_requested) return false;
    it->second.cancel_requested = true;
    spdlog::debug("cancelling the dial to SKI {}", ski);
    detail::DialState::run_cancel(std::move(it->second.cancel));
    return true;
}

void DialScheduler::forget(const std::string& ski) {
    auto it = state_->entries.find(ski);
    if (it == state_->entries.end()) return;
    if (it->second.timer != 0) state_->timers.cancel(std::exchange(it->second.timer, 0));
    if (it->second.in_flight == 0) {
        state_->entries.erase(it);
        return;
    }
    it->second.forgotten = true;
    it->second.cancel_requested = true;
    detail::DialState::run_cancel(std::move(it->second.cancel));
}

void DialScheduler::shutdown() {
    auto& st = *state_;
    st.stopped = true;
    std::vector<std::function<void()>> cancels;
    for (auto& [ski, entry] : st.entries) {
        if (entry.timer != 0) st.timers.cancel(std::exchange(entry.timer, 0));
        if (entry.in_flight != 0 && !entry.cancel_requested) {
            entry.cancel_requested = true;
            cancels.push_back(std::move(entry.cancel));
        }
    }
    for (auto& cancel : cancels)
        detail::DialState::run_cancel(std::move(cancel));
}

std::size_t DialScheduler::in_flight() const {
    return state_->live_tickets;
}

std::size_t DialScheduler::pending_timers() const {
    return static_cast<std::size_t>(std::count_if(state_->entries.begin(), state_->entries.end(),
                                                  [](const auto& e) { return e.second.timer != 0; }));
}

bool DialScheduler::is_dialling(const std::string& ski) const {
    auto it = state_->entries.find(ski);
    return it != state_->entries.end() && it->second.in_flight != 0;
}

bool DialScheduler::has_timer(const std::string& ski) const {
    auto it = state_->entries.find(ski);
    return it != state_->entries.end() && it->second.timer != 0;
}

unsigned DialScheduler::attempts(const std::string& ski) const {
    auto it = state_->entries.find(ski);
    return it == state_->entries.end() ? 0 : it->second.attempts;
}

} // namespace ship::hub
