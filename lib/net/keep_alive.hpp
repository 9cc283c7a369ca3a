// Pings and the pong timeout for every open Link of a strand, from one coarse timer: links sit in a wheel of
// one-second slots, a pong only stamps the link (O(1)), and the timer wakes only for slots that hold links.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

#include "net/timer.hpp"

namespace ship::net {
class LwsLink;
}

namespace ship::net::detail {

struct StrandCore;

class KeepAlive {
public:
    explicit KeepAlive(StrandCore& core);
    KeepAlive(const KeepAlive&) = delete;
    KeepAlive& operator=(const KeepAlive&) = delete;

    // The link is open: it is pinged `ping_after` after its last pong (or its opening) and hung up on
    // `hang_up_after` after it. A link that closes is dropped from the wheel lazily, when its slot comes.
    void watch(LwsLink& link);
    std::size_t watched() const noexcept { return count_; }

private:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t slots = 64;

    static std::int64_t second_of(Clock::time_point t);
    static std::int64_t due_second(Clock::time_point t);
    void place(std::uint64_t link_id, std::int64_t due);
    void arm();
    void tick();

    StrandCore& core_;
    std::array<std::vector<std::uint64_t>, slots> wheel_; // link ids by due second modulo `slots`
    std::size_t count_ = 0;
    std::int64_t next_ = -1;      // the second the timer is armed for, -1 if none
    std::int64_t last_tick_ = -1; // the last second whose slot was processed
    Timer timer_;
};

} // namespace ship::net::detail
