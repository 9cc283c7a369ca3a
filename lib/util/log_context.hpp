// The SHIP peer the current thread's work is about: a LogScope names it (SKI, and SHIP state where known)
// for its lifetime, and log sinks read it to tag lines. Thread-local, nests, copies what it is given.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string_view>

namespace ship::util {

struct LogContext {
    // Copies, not views: a connection may be destroyed inside the scope that names it (its close ends it).
    std::array<char, 40> ski_chars{};
    std::array<char, 32> state_chars{};
    std::size_t ski_size = 0, state_size = 0;

    std::string_view ski() const { return {ski_chars.data(), ski_size}; }
    std::string_view state() const { return {state_chars.data(), state_size}; }
    void set_ski(std::string_view s) { ski_size = copy(s, ski_chars); }
    void set_state(std::string_view s) { state_size = copy(s, state_chars); }

private:
    template <std::size_t N>
    static std::size_t copy(std::string_view s, std::array<char, N>& to) {
        const std::size_t n = std::min(s.size(), N);
        std::copy_n(s.data(), n, to.data());
        return n;
    }
};

// The context of this thread: empty (no SKI) outside any LogScope.
inline LogContext& current_log_context() {
    thread_local LogContext context;
    return context;
}

// Names the peer for the log lines written while it lives, then restores the enclosing scope's peer.
class LogScope {
public:
    explicit LogScope(std::string_view ski, std::string_view state = {})
        : saved_(current_log_context()) {
        auto& context = current_log_context();
        context.set_ski(ski);
        context.set_state(state);
    }
    ~LogScope() { current_log_context() = saved_; }
    LogScope(const LogScope&) = delete;
    LogScope& operator=(const LogScope&) = delete;

    // The SHIP state moved on while the scope is open.
    void set_state(std::string_view state) { current_log_context().set_state(state); }

private:
    LogContext saved_;
};

} // namespace ship::util
