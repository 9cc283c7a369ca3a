#include "journal_sink.hpp"

#include <sys/uio.h>

#include <systemd/sd-journal.h>

namespace ship::daemon {

int journal_priority(spdlog::level::level_enum level) {
    switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
        return 7; // LOG_DEBUG
    case spdlog::level::info:
        return 6; // LOG_INFO
    case spdlog::level::warn:
        return 4; // LOG_WARNING
    case spdlog::level::err:
        return 3; // LOG_ERR
    case spdlog::level::critical:
        return 2; // LOG_CRIT
    case spdlog::level::off:
    case spdlog::level::n_levels:
        break;
    }
    return 6;
}

std::vector<std::string> journal_fields(spdlog::level::level_enum level, std::string_view message,
                                        const util::LogContext& context) {
    std::vector<std::string> fields;
    fields.reserve(5);
    fields.push_back("MESSAGE=" + std::string(message));
    fields.push_back("PRIORITY=" + std::to_string(journal_priority(level)));
    fields.push_back("SYSLOG_IDENTIFIER=" + std::string(journal_identifier));
    if (!context.ski().empty()) fields.push_back("SHIP_SKI=" + std::string(context.ski()));
    if (!context.ski().empty() && !context.state().empty())
        fields.push_back("SHIP_STATE=" + std::string(context.state()));
    return fields;
}

void JournalSink::sink_it_(const spdlog::details::log_msg& msg) {
    const auto fields = journal_fields(msg.level, std::string_view(msg.payload.data(), msg.payload.size()),
                                       util::current_log_context());
    std::vector<iovec> iov;
    iov.reserve(fields.size());
    for (const auto& f : fields)
        iov.push_back(iovec{const_cast<char*>(f.data()), f.size()});
    // A journal that cannot take the line has nowhere to report that either.
    sd_journal_sendv(iov.data(), static_cast<int>(iov.size()));
}

} // namespace ship::daemon
