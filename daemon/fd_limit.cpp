#include "fd_limit.hpp"

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace ship::daemon {

FdLimit raise_fd_limit(unsigned max_connections) {
    FdLimit result;
    result.needed = rlim_t{max_connections} + fd_slack;
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        spdlog::warn("cannot read the open file limit (RLIMIT_NOFILE): {}", std::strerror(errno));
        return result;
    }
    result.before = result.now = limit.rlim_cur;
    if (limit.rlim_cur != limit.rlim_max) {
        rlimit raised = limit;
        raised.rlim_cur = limit.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
            result.now = raised.rlim_cur;
            spdlog::debug("open file limit (RLIMIT_NOFILE) raised from {} to the hard limit {}",
                          limit.rlim_cur, raised.rlim_cur);
        } else {
            // An unlimited hard limit is above the kernel's nr_open: the soft limit stays where it was.
            spdlog::debug("open file limit (RLIMIT_NOFILE) stays at {}: raising it to {} failed: {}",
                          limit.rlim_cur, limit.rlim_max, std::strerror(errno));
        }
    }
    if (!result.enough())
        spdlog::warn("max_connections {} needs about {} open files but the limit (RLIMIT_NOFILE) is {}: "
                     "connections beyond it will fail; raise LimitNOFILE= or lower max_connections",
                     max_connections, result.needed, result.now);
    return result;
}

} // namespace ship::daemon
