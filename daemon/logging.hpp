// shipd's log destination: the journal (with priorities) when systemd connected stderr to it, else stderr,
// coloured on a terminal. Installs spdlog's default logger, which every component logs through.
#pragma once

#include <string_view>

#include <spdlog/common.h>

namespace ship::daemon {

// True when $JOURNAL_STREAM names the device:inode that fd `fd` is (systemd sets it for the service's
// stdout/stderr); a pipe or terminal inherited from a shell does not match even if the variable leaked.
bool fd_is_journal_stream(int fd);

enum class LogTarget { journal, terminal, plain_stderr };
LogTarget detect_log_target();

// Replaces spdlog's default logger; safe to call again (tests, a later --log-level from the config).
void setup_logging(spdlog::level::level_enum level, LogTarget target = detect_log_target());

} // namespace ship::daemon
