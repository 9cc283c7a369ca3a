#include "target_process.hpp"

#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace ship::bench {

std::optional<long> rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            std::istringstream fields(line.substr(6));
            long kib = 0;
            if (fields >> kib) return kib;
        }
    }
    return std::nullopt;
}

std::optional<std::chrono::microseconds> cpu_time(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text;
    std::getline(in, text); // one line
    // The command name may hold spaces and parentheses; the fields we want follow the last ')'.
    const auto close = text.rfind(')');
    if (close == std::string::npos) return std::nullopt;
    std::istringstream fields(text.substr(close + 1));
    std::string skip;
    // After ')': state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime(14)
    // stime(15)
    for (int field = 3; field <= 13; ++field)
        fields >> skip;
    unsigned long long utime = 0, stime = 0;
    if (!(fields >> utime >> stime)) return std::nullopt;
    const auto ticks = static_cast<double>(utime + stime);
    return std::chrono::microseconds(
        static_cast<long long>(ticks * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK))));
}

bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
    const int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) return true; // already gone (ESRCH)
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(timeout.count()));
    close(fd);
    return ready > 0;
}

} // namespace ship::bench
