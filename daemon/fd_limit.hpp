// Start-up raises the open-file soft limit to the hard limit, because every SHIP connection holds a socket,
// and says (warn) when max_connections still cannot fit. Call before the strand creates its lws context.
#pragma once

#include <sys/resource.h>

namespace ship::daemon {

// Listening sockets, D-Bus, Avahi, the strand's wake-up pipe, state files: what shipd holds besides the
// connections, generously.
inline constexpr rlim_t fd_slack = 64;

struct FdLimit {
    rlim_t before = 0, now = 0; // soft limit before and after; RLIM_INFINITY when unlimited
    rlim_t needed = 0;          // max_connections + fd_slack
    bool enough() const { return now == RLIM_INFINITY || now >= needed; }
};

// Raises RLIMIT_NOFILE's soft limit to the hard limit (debug log) and warns if `max_connections` + slack
// exceeds the result.
FdLimit raise_fd_limit(unsigned max_connections);

} // namespace ship::daemon
