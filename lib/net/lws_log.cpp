#include "net/lws_log.hpp"

#include <string_view>

#include <libwebsockets.h>
#include <spdlog/spdlog.h>

namespace ship::net {

namespace {

spdlog::level::level_enum level_for(int lws_level) {
    switch (lws_level) {
    case LLL_ERR:
        return spdlog::level::warn;
    case LLL_WARN:
        return spdlog::level::info;
    case LLL_NOTICE:
        return spdlog::level::debug;
    default:
        return spdlog::level::trace;
    }
}

void emit(int level, const char* line) {
    std::string_view text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.remove_suffix(1);
    spdlog::log(level_for(level), "lws: {}", text);
}

} // namespace

void route_lws_log_to_spdlog() {
    const auto shown = spdlog::get_level();
    int mask = 0;
    for (int level : {LLL_ERR, LLL_WARN, LLL_NOTICE, LLL_INFO})
        if (level_for(level) >= shown) mask |= level;
    lws_set_log_level(mask, &emit);
}

} // namespace ship::net
