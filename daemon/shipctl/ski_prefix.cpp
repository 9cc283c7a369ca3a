#include "ski_prefix.hpp"

#include <algorithm>
#include <cctype>

#include "ship/ski.hpp"

namespace ship::ctl {

namespace {

// The prefix in canonical spelling, or empty when it cannot start a SKI.
std::string canonical_prefix(std::string_view input) {
    std::string out;
    for (const char c : input) {
        if (c == ' ' || c == '-') continue;
        const auto u = static_cast<unsigned char>(c);
        if (!std::isxdigit(u)) return {};
        out.push_back(static_cast<char>(std::tolower(u)));
    }
    if (out.size() > ship::ski_hex_length) return {};
    return out;
}

} // namespace

bool is_full_ski(std::string_view input) {
    return ship::normalize_ski(input).has_value();
}

SkiResolution resolve_ski(std::string_view input, const std::vector<std::string>& known) {
    if (auto full = ship::normalize_ski(input)) return *full;
    const std::string prefix = canonical_prefix(input);
    if (prefix.empty()) return SkiNotHex{};
    std::vector<std::string> matches;
    for (const auto& ski : known)
        if (ski.rfind(prefix, 0) == 0) matches.push_back(ski);
    std::sort(matches.begin(), matches.end());
    matches.erase(std::unique(matches.begin(), matches.end()), matches.end());
    if (matches.empty()) return SkiNoMatch{};
    if (matches.size() > 1) return SkiAmbiguous{std::move(matches)};
    return matches.front();
}

} // namespace ship::ctl
