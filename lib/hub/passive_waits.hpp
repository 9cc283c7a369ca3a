// New connections the smaller-SKI node holds back unbuilt while the larger-SKI peer settles a double
// connection (SHIP 12.2.2, spec rule: Decision::defer). Each is held at most `wait`; nothing fires after
// stop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <utility>
#include <vector>

#include "hub/double_connection.hpp"
#include "hub/timers.hpp"

namespace ship::hub {

// Strand-confined; the TimerService must outlive it. T is whatever the hub needs to build the connection
// later (its transport). How the hub uses it:
//   swap → defer            : hold(ski, direction, transport, on_wait_over)
//   held transport closes   : take(id) and drop it (the larger SKI kept the other connection)
//   remove_if_matches owned : take_ski(ski), swap each again (the slot is free now)
//   on_wait_over(held)      : swap again with passive_wait_over = true (the most recent wins)
//   stop                    : take_all() and close them
template <class T>
class PassiveWaits {
public:
    using Id = std::uint64_t;
    struct Held {
        Id id = 0;
        std::string ski;
        Direction direction = Direction::incoming;
        T item;
    };
    using WaitOver = std::function<void(Held held)>;

    PassiveWaits(TimerService& timers, std::stop_token stop, std::chrono::milliseconds wait = passive_wait)
        : state_(std::make_shared<State>(timers, std::move(stop), wait)) {}
    ~PassiveWaits() {
        for (auto& [id, entry] : state_->entries)
            state_->timers.cancel(entry.timer);
    }
    PassiveWaits(const PassiveWaits&) = delete;
    PassiveWaits& operator=(const PassiveWaits&) = delete;

    // Holds `item`; unless taken first, it is removed after `wait` and handed to on_wait_over (never after
    // stop was requested).
    Id hold(std::string ski, Direction direction, T item, WaitOver on_wait_over) {
        State& st = *state_;
        const Id id = ++st.last_id;
        std::weak_ptr<State> weak = state_;
        TimerService::Id timer = st.timers.schedule(st.wait, [weak, id] {
            auto self = weak.lock();
            if (!self || self->stop.stop_requested()) return;
            auto it = self->entries.find(id);
            if (it == self->entries.end()) return;
            Entry entry = std::move(it->second);
            self->entries.erase(it);
            entry.on_wait_over(std::move(entry.held));
        });
        st.entries.emplace(
            id, Entry{Held{id, std::move(ski), direction, std::move(item)}, timer, std::move(on_wait_over)});
        return id;
    }

    std::optional<Held> take(Id id) {
        auto it = state_->entries.find(id);
        if (it == state_->entries.end()) return std::nullopt;
        return remove(it);
    }

    // Everything held for `ski`, oldest first.
    std::vector<Held> take_ski(const std::string& ski) {
        std::vector<Held> out;
        for (auto it = state_->entries.begin(); it != state_->entries.end();) {
            if (it->second.held.ski == ski)
                out.push_back(remove(it++));
            else
                ++it;
        }
        return out;
    }

    std::vector<Held> take_all() {
        std::vector<Held> out;
        while (!state_->entries.empty())
            out.push_back(remove(state_->entries.begin()));
        return out;
    }

    std::size_t size() const noexcept { return state_->entries.size(); }

private:
    struct Entry {
        Held held;
        TimerService::Id timer;
        WaitOver on_wait_over;
    };
    struct State {
        State(TimerService& t, std::stop_token s, std::chrono::milliseconds w)
            : timers(t)
            , stop(std::move(s))
            , wait(w) {}
        TimerService& timers;
        std::stop_token stop;
        std::chrono::milliseconds wait;
        Id last_id = 0;
        std::map<Id, Entry> entries;
    };

    Held remove(typename std::map<Id, Entry>::iterator it) {
        state_->timers.cancel(it->second.timer);
        Held held = std::move(it->second.held);
        state_->entries.erase(it);
        return held;
    }

    std::shared_ptr<State> state_;
};

} // namespace ship::hub
