#include "logging.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "journal_sink.hpp"

namespace ship::daemon {

bool fd_is_journal_stream(int fd) {
    const char* env = std::getenv("JOURNAL_STREAM");
    if (env == nullptr) return false;
    std::uintmax_t dev = 0, ino = 0;
    char tail = 0;
    if (std::sscanf(env, "%" SCNuMAX ":%" SCNuMAX "%c", &dev, &ino, &tail) != 2) return false;
    struct stat st {};
    if (fstat(fd, &st) != 0) return false;
    return static_cast<std::uintmax_t>(st.st_dev) == dev && static_cast<std::uintmax_t>(st.st_ino) == ino;
}

LogTarget detect_log_target() {
    if (fd_is_journal_stream(STDERR_FILENO)) return LogTarget::journal;
    return isatty(STDERR_FILENO) == 1 ? LogTarget::terminal : LogTarget::plain_stderr;
}

void setup_logging(spdlog::level::level_enum level, LogTarget target) {
    std::shared_ptr<spdlog::logger> logger;
    switch (target) {
    case LogTarget::journal:
        // The journal stamps time, unit and priority itself; the message and the peer's fields are all it
        // needs (journalctl SHIP_SKI=<ski> shows one peer's story).
        logger = std::make_shared<spdlog::logger>("shipd", std::make_shared<JournalSink>());
        break;
    case LogTarget::terminal:
        logger = std::make_shared<spdlog::logger>(
            "shipd", std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>(spdlog::color_mode::always));
        logger->set_pattern("%H:%M:%S.%e %^%-5l%$ %v");
        break;
    case LogTarget::plain_stderr:
        logger = std::make_shared<spdlog::logger>(
            "shipd", std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>(spdlog::color_mode::never));
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %-5l %v");
        break;
    }
    logger->set_level(level);
    // Warnings and errors reach the journal or file at once, even if the daemon dies right after.
    logger->flush_on(spdlog::level::warn);
    spdlog::set_default_logger(std::move(logger));
}

} // namespace ship::daemon
