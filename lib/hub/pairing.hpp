// Pairing requests of untrusted peers as the hub keeps them: a budget of their own (max_pending, and per
// source address), where the oldest gives way to a new one; a deadline per request; the quiet period after a
// denial; and the one-line-per-burst account of refused attempts. Strand only; time from a TimerService.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hub/timers.hpp"

namespace ship::hub {

// Defaults are the documented ones (daemon/README.md, shipd.conf(5)).
struct PairingLimits {
    std::chrono::seconds timeout{120};      // pairing_timeout: how long a request waits for a decision
    std::chrono::seconds quiet_period{600}; // pairing_quiet_period: a denied SKI's new requests are refused
    // Untrusted connections at once (from admission until trusted or gone), and of those from one IP address.
    // They never count against max_connections/max_handshakes, so they cannot keep a trusted peer out.
    unsigned max_pending = 16;
    unsigned max_pending_per_address = 4;
    std::size_t max_quiet =
        1024; // denied SKIs remembered at once; beyond it the one whose quiet ends first goes
};

class PairingBook {
public:
    using ConnectionId = std::uint64_t;
    using RequestId = std::uint64_t;
    using Clock = TimerService::Clock;

    struct Entry {
        ConnectionId connection = 0;
        std::string ski;
        std::string address;     // the peer's IP address (no port): the key of the per-address budget
        Clock::time_point since; // admitted
        RequestId request = 0;   // 0 until its hello waits for a decision
        Clock::time_point deadline{};
    };

    // `expired` runs from a timer when a request's deadline passes undecided; the entry has left the book.
    PairingBook(TimerService& timers, PairingLimits limits, std::function<void(const Entry&)> expired);
    ~PairingBook();
    PairingBook(const PairingBook&) = delete;
    PairingBook& operator=(const PairingBook&) = delete;

    const PairingLimits& limits() const noexcept { return limits_; }
    // For requests asked from now on; running deadlines stay as they were announced.
    void set_timeout(std::chrono::seconds timeout) { limits_.timeout = timeout; }

    // What must go so that one more connection from `address` fits, in drop order: the oldest from that
    // address while its share is full, then the oldest of all while the whole budget is. Empty: it fits.
    std::vector<ConnectionId> make_room(std::string_view address) const;
    void add(ConnectionId id, std::string ski, std::string address);
    // Its hello waits for a decision now: gives it a request id and a deadline `timeout` from now (the same
    // ones again if already asked). Null if the connection is not in the book.
    const Entry* ask(ConnectionId id);
    // Leaves the book (decided, gone, dropped, trusted after all); its deadline timer goes with it.
    std::optional<Entry> remove(ConnectionId id);

    const Entry* find(ConnectionId id) const;
    const Entry* find_request(RequestId id) const;
    const Entry* find_ski(std::string_view ski) const; // the newest of that SKI
    std::vector<Entry> entries() const;                // oldest first
    std::size_t size() const noexcept { return entries_.size(); }
    std::size_t count_from(std::string_view address) const;

    // The quiet period: after a user's (or agent's) denial, `ski` is refused until quiet_period has passed.
    void denied(const std::string& ski);
    bool is_quiet(std::string_view ski) const;
    void forgive(std::string_view ski); // a later Trust lifts it
    std::size_t quiet_count() const noexcept { return quiet_.size(); }

private:
    bool older(const Entry& a, const Entry& b) const;

    TimerService& timers_;
    PairingLimits limits_;
    std::function<void(const Entry&)> expired_;
    std::map<ConnectionId, Entry> entries_;
    std::map<ConnectionId, TimerService::Id> deadlines_;
    RequestId last_request_ = 0;
    std::map<std::string, Clock::time_point, std::less<>> quiet_; // SKI → end of its quiet period
};

// Refused attempts are logged once per burst, not once per attempt: a peer retrying every few milliseconds
// must not flood the journal. Attempts less than `gap` apart are one burst. Pure; the caller's clock.
class BurstLog {
public:
    using Clock = TimerService::Clock;
    explicit BurstLog(std::chrono::seconds gap = std::chrono::seconds(60), std::size_t max_keys = 1024);

    // nullopt: part of a burst already logged, stay silent. Otherwise a new burst begins (log it): the value
    // is how many attempts the previous burst of this key had after its logged first one.
    std::optional<std::uint64_t> attempt(const std::string& key, Clock::time_point now);

private:
    struct Burst {
        Clock::time_point last;
        std::uint64_t unlogged = 0;
    };
    std::chrono::seconds gap_;
    std::size_t max_keys_;
    std::map<std::string, Burst, std::less<>> bursts_;
};

// "192.0.2.1:4711" → {"192.0.2.1", 4711}; "[fe80::1%eth0]:4711" → {"fe80::1%eth0", 4711}. {"", 0} when the
// text is not one of those forms.
std::pair<std::string, std::uint16_t> split_host_port(std::string_view remote);

} // namespace ship::hub
