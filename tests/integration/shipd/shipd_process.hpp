// A real shipd process for integration tests: started with its own state dir and bus, watched through its
// own sd_notify socket (READY=1, STOPPING=1) and its exit status, stopped by PID. Waits have deadlines.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ship::test {

class ShipdProcess {
public:
    // `args` come after the binary ($SHIPD_BINARY); stderr goes to `log`.
    ShipdProcess(std::vector<std::string> args, std::filesystem::path log);
    ~ShipdProcess(); // SIGKILL if still running
    ShipdProcess(const ShipdProcess&) = delete;
    ShipdProcess& operator=(const ShipdProcess&) = delete;

    pid_t pid() const { return pid_; }
    // Waits for a line from sd_notify containing `what` (e.g. "READY=1"); false at the deadline.
    bool wait_notify(const std::string& what, std::chrono::milliseconds timeout);
    // Everything received on the notify socket so far, in order.
    const std::vector<std::string>& notifications() const { return notes_; }
    void signal(int sig);
    // The exit status (WEXITSTATUS, or 128+signal) once it exited within `timeout`.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    std::string log() const;

private:
    void read_notes(int timeout_ms);
    pid_t pid_ = -1;
    int notify_fd_ = -1;
    std::filesystem::path socket_path_, log_;
    std::vector<std::string> notes_;
    std::optional<int> status_;
};

// A TCP port that was free a moment ago on 127.0.0.1 (for a daemon that must come back on the same port).
std::uint16_t free_port();

} // namespace ship::test
