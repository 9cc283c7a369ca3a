// The journal is chosen only when $JOURNAL_STREAM names the very file stderr is, as systemd sets it.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "logging.hpp"

#include <spdlog/spdlog.h>

using namespace ship::daemon;

TEST_CASE("JOURNAL_STREAM must match the fd's device and inode", "[daemon][logging]") {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    struct stat st {};
    REQUIRE(fstat(fds[1], &st) == 0);
    const std::string match = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);

    setenv("JOURNAL_STREAM", match.c_str(), 1);
    CHECK(fd_is_journal_stream(fds[1]));
    setenv("JOURNAL_STREAM", (std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1)).c_str(), 1);
    CHECK_FALSE(fd_is_journal_stream(fds[1]));
    setenv("JOURNAL_STREAM", "garbage", 1);
    CHECK_FALSE(fd_is_journal_stream(fds[1]));
    setenv("JOURNAL_STREAM", (match + "x").c_str(), 1);
    CHECK_FALSE(fd_is_journal_stream(fds[1]));
    unsetenv("JOURNAL_STREAM");
    CHECK_FALSE(fd_is_journal_stream(fds[1]));
    close(fds[0]);
    close(fds[1]);
}

TEST_CASE("setup_logging installs a default logger at the requested level", "[daemon][logging]") {
    setup_logging(spdlog::level::warn, LogTarget::plain_stderr);
    CHECK(spdlog::default_logger()->level() == spdlog::level::warn);
    setup_logging(spdlog::level::trace, LogTarget::terminal);
    CHECK(spdlog::default_logger()->level() == spdlog::level::trace);
}
