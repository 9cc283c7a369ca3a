// What shipbench reads about the daemon under test from /proc: resident memory (VmRSS) and CPU time
// (utime+stime). Reads never throw; a vanished process reads as nullopt.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>

namespace ship::bench {

// VmRSS from /proc/PID/status, in KiB.
std::optional<long> rss_kib(pid_t pid);

// utime + stime from /proc/PID/stat.
std::optional<std::chrono::microseconds> cpu_time(pid_t pid);

// Waits (pidfd, so the target need not be our child) until `pid` has exited; false at the deadline.
bool wait_gone(pid_t pid, std::chrono::milliseconds timeout);

} // namespace ship::bench
