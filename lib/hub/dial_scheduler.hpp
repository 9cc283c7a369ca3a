// When to dial each trusted peer: per-SKI attempt counter with random delays (0–3 s, 3–10 s, then 10–20 s,
// forever while wanted), at most one attempt in flight per SKI, nothing at all once stop is requested.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "hub/peer_address.hpp"
#include "hub/timers.hpp"

namespace ship::hub {

struct DelayRange {
    std::chrono::milliseconds min, max;
};
// ship-protocol.md §6: attempt 0: 0–3 s, attempt 1: 3–10 s, attempt ≥ 2: 10–20 s.
DelayRange attempt_delay(unsigned attempt);

namespace detail {
struct DialState;
}

// The in-flight marker of one dial attempt, held by whoever runs the dial. The attempt ends when the ticket
// is destroyed, however that happens (failure, exception, dropped callback); only then may the next one for
// that SKI start. A ticket that ends without connected() schedules the next attempt. Move-only.
class DialTicket {
public:
    DialTicket() = default;
    DialTicket(DialTicket&& other) noexcept;
    DialTicket& operator=(DialTicket&& other) noexcept;
    DialTicket(const DialTicket&) = delete;
    DialTicket& operator=(const DialTicket&) = delete;
    ~DialTicket();

    const std::string& ski() const noexcept { return ski_; }
    // Still marks an attempt in flight.
    bool held() const noexcept { return attempt_ != 0; }

    // The dial produced a connection. True if it may go on to Registry::swap: the scheduler still exists,
    // stop was not requested and the dial was not cancelled. Ends the attempt either way; on true no retry
    // is scheduled from here (the connection's own end will ask for one), on false the caller closes the
    // connection and the next attempt is scheduled as for a failed dial.
    bool connected();

    // Ends the attempt now as a failure (same as destroying the ticket).
    void release() noexcept;

private:
    friend struct detail::DialState;
    DialTicket(std::weak_ptr<detail::DialState> state, std::string ski, std::uint64_t attempt)
        : state_(std::move(state))
        , ski_(std::move(ski))
        , attempt_(attempt) {}
    void end(bool connected) noexcept;

    std::weak_ptr<detail::DialState> state_;
    std::string ski_;
    std::uint64_t attempt_ = 0;
};

// Strand-confined. Timer callbacks and tickets hold only weak references, so they are inert once the
// scheduler is gone; and every one of them checks the stop token first. The TimerService and RandomSource
// must outlive the scheduler.
class DialScheduler {
public:
    struct Hooks {
        // Should this SKI be dialled now: trusted, and Registry::is_connected false.
        std::function<bool(const std::string& ski)> wants_dial;
        // Last known (trust store) or announced (mDNS) address; nullopt: keep waiting for one.
        std::function<std::optional<PeerAddress>(const std::string& ski)> address_for;
        // Starts the dial and returns how to cancel it (may be empty). The dialer keeps the ticket until the
        // dial ends; it may also drop it before returning (synchronous failure).
        std::function<std::function<void()>(const std::string& ski, const PeerAddress& address,
                                            DialTicket ticket)>
            dial;
    };

    DialScheduler(TimerService& timers, RandomSource& random, std::stop_token stop, Hooks hooks);
    ~DialScheduler(); // cancels its timers; outstanding tickets become inert
    DialScheduler(const DialScheduler&) = delete;
    DialScheduler& operator=(const DialScheduler&) = delete;

    // Make sure an attempt is coming: schedules one after the delay for the SKI's attempt counter, unless a
    // timer is already pending or a dial is in flight. The hub calls this for every trusted peer at start,
    // when one becomes trusted, when one is discovered, and when a connection that owned its slot ends.
    void request(const std::string& ski);
    // Like request, but with no delay (replaces a pending timer): an explicit Connect from the user.
    void request_now(const std::string& ski);

    // A SHIP handshake with this SKI completed (either direction): the counter starts again at 0.
    void handshake_completed(const std::string& ski);

    // Cancels the in-flight dial to `ski` (an incoming connection from it won). Its ticket then ends like a
    // failed dial: the next attempt is scheduled and dials only if the peer is still wanted. True if there
    // was one to cancel.
    bool cancel_dial(const std::string& ski);

    // Untrusted: no timer, no dial, counter gone.
    void forget(const std::string& ski);

    // Stop: cancels every timer and every in-flight dial; schedules nothing from now on. The hub then waits,
    // with a bound, until in_flight() is 0.
    void shutdown();

    std::size_t in_flight() const;
    std::size_t pending_timers() const;
    bool is_dialling(const std::string& ski) const;
    bool has_timer(const std::string& ski) const;
    unsigned attempts(const std::string& ski) const; // delays drawn since the last completed handshake

private:
    std::shared_ptr<detail::DialState> state_;
};

} // namespace ship::hub
