// What the hub's core pieces need from the outside world to pass time and draw lots: a monotonic clock with
// one-shot timers, and a random source. Injected, so unit tests drive them virtually and deterministically.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <random>

namespace ship::hub {

// On the strand this is lws_sul; in tests a virtual clock. A fired timer is forgotten by the service before
// its callback runs; cancel() of a fired or unknown id does nothing. Callbacks run on the strand.
class TimerService {
public:
    using Clock = std::chrono::steady_clock;
    using Id = std::uint64_t; // never 0: 0 means "no timer"

    virtual ~TimerService() = default;
    virtual Clock::time_point now() const = 0;
    virtual Id schedule(std::chrono::milliseconds delay, std::function<void()> callback) = 0;
    virtual void cancel(Id id) = 0;
    // Timers scheduled and not yet fired or cancelled (tests and diagnostics: nothing left armed at stop).
    virtual std::size_t pending() const = 0;
};

class RandomSource {
public:
    virtual ~RandomSource() = default;
    // Uniform in [lo, hi], both included.
    virtual std::int64_t uniform(std::int64_t lo, std::int64_t hi) = 0;
};

// Mersenne twister: seeded from std::random_device in the daemon, from a fixed seed in tests.
class SeededRandom final : public RandomSource {
public:
    explicit SeededRandom(std::uint64_t seed)
        : engine_(seed) {}
    static SeededRandom from_entropy() {
        std::random_device device;
        return SeededRandom((std::uint64_t{device()} << 32) | device());
    }
    std::int64_t uniform(std::int64_t lo, std::int64_t hi) override {
        return std::uniform_int_distribution<std::int64_t>(lo, hi)(engine_);
    }

private:
    std::mt19937_64 engine_;
};

} // namespace ship::hub
