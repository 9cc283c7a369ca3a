#include "hub/pairing.hpp"

#include <algorithm>

namespace ship::hub {

PairingBook::PairingBook(TimerService& timers, PairingLimits limits,
                         std::function<void(const Entry&)> expired)
    : timers_(timers)
    , limits_(limits)
    , expired_(std::move(expired)) {}

PairingBook::~PairingBook() {
    for (const auto& [id, timer] : deadlines_)
        timers_.cancel(timer);
}

bool PairingBook::older(const Entry& a, const Entry& b) const {
    return a.since != b.since ? a.since < b.since : a.connection < b.connection;
}

std::vector<PairingBook::ConnectionId> PairingBook::make_room(std::string_view address) const {
    std::vector<const Entry*> all;
    for (const auto& [id, e] : entries_)
        all.push_back(&e);
    std::sort(all.begin(), all.end(), [this](const Entry* a, const Entry* b) { return older(*a, *b); });
    std::vector<ConnectionId> drop;
    std::size_t from_address = 0;
    for (const auto* e : all)
        if (e->address == address) ++from_address;
    // Per address first: one noisy host gives way among its own before it pushes out another host's request.
    for (const auto* e : all) {
        if (from_address < std::max(1u, limits_.max_pending_per_address)) break;
        if (e->address != address) continue;
        drop.push_back(e->connection);
        --from_address;
    }
    std::size_t total = all.size() - drop.size();
    for (const auto* e : all) {
        if (total < std::max(1u, limits_.max_pending)) break;
        if (std::find(drop.begin(), drop.end(), e->connection) != drop.end()) continue;
        drop.push_back(e->connection);
        --total;
    }
    return drop;
}

void PairingBook::add(ConnectionId id, std::string ski, std::string address) {
    Entry e;
    e.connection = id;
    e.ski = std::move(ski);
    e.address = std::move(address);
    e.since = timers_.now();
    entries_[id] = std::move(e);
}

const PairingBook::Entry* PairingBook::ask(ConnectionId id) {
    auto it = entries_.find(id);
    if (it == entries_.end()) return nullptr;
    Entry& e = it->second;
    if (e.request != 0) return &e;
    e.request = ++last_request_;
    e.deadline = timers_.now() + limits_.timeout;
    deadlines_[id] =
        timers_.schedule(std::chrono::duration_cast<std::chrono::milliseconds>(limits_.timeout), [this, id] {
            deadlines_.erase(id); // fired: nothing to cancel any more
            if (auto gone = remove(id)) expired_(*gone);
        });
    return &e;
}

std::optional<PairingBook::Entry> PairingBook::remove(ConnectionId id) {
    auto node = entries_.extract(id);
    if (node.empty()) return std::nullopt;
    if (auto t = deadlines_.extract(id); !t.empty()) timers_.cancel(t.mapped());
    return std::move(node.mapped());
}

const PairingBook::Entry* PairingBook::find(ConnectionId id) const {
    auto it = entries_.find(id);
    return it == entries_.end() ? nullptr : &it->second;
}

const PairingBook::Entry* PairingBook::find_request(RequestId id) const {
    if (id == 0) return nullptr;
    for (const auto& [cid, e] : entries_)
        if (e.request == id) return &e;
    return nullptr;
}

const PairingBook::Entry* PairingBook::find_ski(std::string_view ski) const {
    const Entry* newest = nullptr;
    for (const auto& [id, e] : entries_)
        if (e.ski == ski && (!newest || older(*newest, e))) newest = &e;
    return newest;
}

std::vector<PairingBook::Entry> PairingBook::entries() const {
    std::vector<Entry> out;
    for (const auto& [id, e] : entries_)
        out.push_back(e);
    std::sort(out.begin(), out.end(), [this](const Entry& a, const Entry& b) { return older(a, b); });
    return out;
}

std::size_t PairingBook::count_from(std::string_view address) const {
    return static_cast<std::size_t>(std::count_if(
        entries_.begin(), entries_.end(), [&](const auto& kv) { return kv.second.address == address; }));
}

void PairingBook::denied(const std::string& ski) {
    if (limits_.quiet_period.count() <= 0) return;
    const auto now = timers_.now();
    std::erase_if(quiet_, [now](const auto& kv) { return kv.second <= now; });
    quiet_[ski] = now + limits_.quiet_period;
    // Bounded: many SKIs denied at once (one attacker, many certificates) forget the earliest ending first.
    while (quiet_.size() > std::max<std::size_t>(1, limits_.max_quiet)) {
        auto first = std::min_element(quiet_.begin(), quiet_.end(),
                                      [](const auto& a, const auto& b) { return a.second < b.second; });
        quiet_.erase(first);
    }
}

bool PairingBook::is_quiet(std::string_view ski) const {
    auto it = quiet_.find(ski);
    return it != quiet_.end() && timers_.now() < it->second;
}

void PairingBook::forgive(std::string_view ski) {
    if (auto it = quiet_.find(ski); it != quiet_.end()) quiet_.erase(it);
}

BurstLog::BurstLog(std::chrono::seconds gap, std::size_t max_keys)
    : gap_(gap)
    , max_keys_(std::max<std::size_t>(1, max_keys)) {}

std::optional<std::uint64_t> BurstLog::attempt(const std::string& key, Clock::time_point now) {
    auto it = bursts_.find(key);
    if (it != bursts_.end() && now - it->second.last < gap_) {
        it->second.last = now;
        ++it->second.unlogged;
        return std::nullopt;
    }
    std::uint64_t previous = 0;
    if (it != bursts_.end()) {
        previous = it->second.unlogged;
        it->second = Burst{now, 0};
        return previous;
    }
    if (bursts_.size() >= max_keys_) {
        // Quiet keys first; else the one silent longest. Forgetting a key only costs one more log line.
        std::erase_if(bursts_, [&](const auto& kv) { return now - kv.second.last >= gap_; });
        if (bursts_.size() >= max_keys_)
            bursts_.erase(std::min_element(bursts_.begin(), bursts_.end(), [](const auto& a, const auto& b) {
                return a.second.last < b.second.last;
            }));
    }
    bursts_.emplace(key, Burst{now, 0});
    return previous;
}

std::pair<std::string, std::uint16_t> split_host_port(std::string_view remote) {
    const auto colon = remote.rfind(':');
    if (colon == std::string_view::npos || colon + 1 >= remote.size()) return {};
    std::string_view host = remote.substr(0, colon);
    const std::string_view digits = remote.substr(colon + 1);
    unsigned port = 0;
    for (const char c : digits) {
        if (c < '0' || c > '9') return {};
        port = port * 10 + static_cast<unsigned>(c - '0');
        if (port > 65535) return {};
    }
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    else if (host.find(':') != std::string_view::npos)
        return {}; // an IPv6 address must come in brackets when a port follows
    if (host.empty()) return {};
    return {std::string(host), static_cast<std::uint16_t>(port)};
}

} // namespace ship::hub
