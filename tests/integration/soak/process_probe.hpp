// What /proc says about another process: open descriptors, sockets among them, resident memory.
// Each call reads /proc afresh; a process that is gone reads as std::nullopt.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>

namespace ship::soak {

struct ProcessFigures {
    std::size_t fds = 0;     // entries of /proc/PID/fd
    std::size_t sockets = 0; // of those, "socket:[…]" links
    std::size_t rss_kib = 0; // VmRSS of /proc/PID/status
};

std::optional<ProcessFigures> probe(pid_t pid);

} // namespace ship::soak
