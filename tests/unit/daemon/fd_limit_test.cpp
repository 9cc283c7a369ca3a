// Start-up raises the open-file soft limit to the hard limit and tells whether max_connections fits.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include "fd_limit.hpp"

using namespace ship::daemon;

namespace {

// Puts the process's RLIMIT_NOFILE back as it was (the test lowers the soft limit).
struct SavedLimit {
    rlimit saved{};
    SavedLimit() { REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0); }
    ~SavedLimit() { setrlimit(RLIMIT_NOFILE, &saved); }
};

} // namespace

TEST_CASE("the open file soft limit is raised to the hard limit", "[daemon][fd_limit]") {
    SavedLimit saved;
    if (saved.saved.rlim_max == RLIM_INFINITY || saved.saved.rlim_max < 512) {
        WARN("hard limit unsuitable");
        return;
    }
    rlimit low = saved.saved;
    low.rlim_cur = 256;
    REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);

    const FdLimit limit = raise_fd_limit(32);
    CHECK(limit.before == 256);
    CHECK(limit.now == saved.saved.rlim_max);
    rlimit after{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &after) == 0);
    CHECK(after.rlim_cur == saved.saved.rlim_max);
    CHECK(limit.enough());
}

TEST_CASE("max_connections beyond the fd limit is reported", "[daemon][fd_limit]") {
    SavedLimit saved;
    if (saved.saved.rlim_max == RLIM_INFINITY || saved.saved.rlim_max > 1'000'000) {
        WARN("no finite hard limit");
        return;
    }
    // More connections than the hard limit allows, whatever the machine's limit is.
    const auto too_many = static_cast<unsigned>(saved.saved.rlim_max);
    const FdLimit limit = raise_fd_limit(too_many);
    CHECK(limit.needed == rlim_t{too_many} + fd_slack);
    CHECK_FALSE(limit.enough());
    CHECK(raise_fd_limit(1).enough());
}
