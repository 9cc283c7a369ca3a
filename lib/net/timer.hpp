// A one-shot timer on the strand (a libev timer): destroying or cancelling it guarantees its callback never
// runs afterwards. Timers of kind `normal` are silenced by stop; `shutdown` ones keep firing until run()
// returns.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

namespace ship::net {

class Strand;

namespace detail {
struct TimerCore;
struct StrandCore;
} // namespace detail

class Timer {
public:
    enum class Kind {
        normal,   // reconnect delays, SHIP handshake timers: nothing to do once the daemon stops
        shutdown, // bounds of a polite close: must still fire while the strand drains (Strand contract 3)
    };

    explicit Timer(Strand& strand, Kind kind = Kind::normal);
    explicit Timer(detail::StrandCore& strand, Kind kind = Kind::normal); // lib/net internals
    ~Timer();
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    // Strand only. Replaces a pending expiry. The callback runs on the strand, at most once per start();
    // it may restart or destroy this Timer.
    void start(std::chrono::microseconds delay, std::function<void()> callback);
    void cancel();
    bool pending() const;

private:
    std::unique_ptr<detail::TimerCore> core_;
};

} // namespace ship::net
