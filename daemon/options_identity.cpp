#include <string>

#include "options.hpp"
#include "ship/connection.hpp"

namespace ship::daemon {
namespace {

constexpr std::string_view unsafe_rule =
    "must be UTF-8 without [ ] { } \" \\ or control characters and must not contain the word datagram: peers "
    "decode SHIP control messages by text replacement";

std::string origin_of(const Options& options, const std::string& key) {
    const auto it = options.origins.find(key);
    return it != options.origins.end() ? it->second : "\"" + key + "\"";
}

} // namespace

void check_ship_identity(const Options& options) {
    if (!options.ship_id.empty()) {
        if (!ship::is_safe_control_string(options.ship_id))
            throw UsageError(origin_of(options, "ship_id") + ": SHIP ID '" + options.ship_id + "' " +
                             std::string(unsafe_rule));
        return;
    }
    // The derived SHIP ID joins these with '-' (and the SKI's hex digits when there is no serial), so the
    // whole is safe exactly when each part is: no refused sequence can span a '-'.
    for (const auto& [key, value] : {std::pair{"brand", &options.brand}, std::pair{"model", &options.model},
                                     std::pair{"serial", &options.serial}}) {
        if (!ship::is_safe_control_string(*value))
            throw UsageError(origin_of(options, key) + " '" + *value +
                             "' would be part of the SHIP ID derived from brand, model and serial, which " +
                             std::string(unsafe_rule) + " (or set \"ship_id\")");
    }
}

} // namespace ship::daemon
