// An spdlog sink that writes each line to the journal as its own entry with fields: MESSAGE, PRIORITY,
// SYSLOG_IDENTIFIER=shipd, and SHIP_SKI / SHIP_STATE from the thread's util::LogScope when one is open.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/sinks/base_sink.h>

#include "util/log_context.hpp"

namespace ship::daemon {

inline constexpr std::string_view journal_identifier = "shipd";

// syslog(3) priority of an spdlog level: trace and debug 7, info 6, warn 4, error 3, critical 2.
int journal_priority(spdlog::level::level_enum level);

// The journal entry of one log line, as "NAME=value" fields in the order sent. Values may hold newlines
// (sd_journal_sendv takes the field length, not a terminator).
std::vector<std::string> journal_fields(spdlog::level::level_enum level, std::string_view message,
                                        const util::LogContext& context);

// spdlog's own systemd_sink (1.10) can add no fields of its own; this one can. Lines are sent in the
// logging thread, which is what makes the thread-local LogScope the right one. The sink's mutex (spdlog's
// base_sink) cannot go: the disk writer thread logs too (a result it cannot hand back, a write that outlived
// the shutdown bound), rarely, but on its own thread.
class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
protected:
    void sink_it_(const spdlog::details::log_msg& msg) override;
    void flush_() override {}
};

} // namespace ship::daemon
