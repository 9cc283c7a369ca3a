#include "hub/connect_requests.hpp"

#include <utility>

namespace ship::hub {

ConnectRequests::ConnectRequests(TimerService& timers, std::chrono::milliseconds wait, Describe describe)
    : timers_(timers)
    , wait_(wait)
    , describe_(std::move(describe)) {}

ConnectRequests::~ConnectRequests() {
    // Dropped unanswered: whoever answers the caller (a D-Bus reply) answers ShuttingDown when dropped, and
    // what it would call may already be gone.
    for (auto& [ski, entry] : entries_)
        for (auto& caller : entry.callers)
            timers_.cancel(caller.timer);
}

void ConnectRequests::add(const std::string& ski, std::optional<PeerAddress> address, Done done) {
    auto& entry = entries_[ski];
    if (address) entry.address = std::move(address);
    const std::uint64_t id = ++last_id_;
    const auto timer = timers_.schedule(wait_, [this, ski, id] { expired(ski, id); });
    entry.callers.push_back(Caller{id, std::move(done), timer});
}

std::optional<PeerAddress> ConnectRequests::address(const std::string& ski) const {
    auto it = entries_.find(ski);
    return it == entries_.end() ? std::nullopt : it->second.address;
}

void ConnectRequests::finish(const std::string& ski, Result outcome) {
    auto node = entries_.extract(ski);
    if (node.empty()) return;
    for (auto& caller : node.mapped().callers) {
        timers_.cancel(caller.timer);
        if (caller.done) caller.done(outcome);
    }
}

void ConnectRequests::finish_all(Result outcome) {
    auto entries = std::exchange(entries_, {});
    for (auto& [ski, entry] : entries)
        for (auto& caller : entry.callers) {
            timers_.cancel(caller.timer);
            if (caller.done) caller.done(outcome);
        }
}

void ConnectRequests::expired(const std::string& ski, std::uint64_t id) {
    auto it = entries_.find(ski);
    if (it == entries_.end()) return;
    auto& callers = it->second.callers;
    for (auto c = callers.begin(); c != callers.end(); ++c) {
        if (c->id != id) continue;
        Done done = std::move(c->done);
        callers.erase(c);
        // The dial goes on (the scheduler keeps it); only this caller stops waiting. The address it asked for
        // stays in use while other callers wait for it.
        if (callers.empty()) entries_.erase(it);
        if (!done) return;
        const std::string how_far = describe_ ? describe_(ski) : std::string();
        done(Error{ErrorCode::timeout, "no SHIP data exchange with " + ski + " within " +
                                           std::to_string(wait_.count() / 1000) + " s" +
                                           (how_far.empty() ? std::string() : " (" + how_far + ")")});
        return;
    }
}

} // namespace ship::hub
