#include "ship/ski.hpp"

namespace ship {

namespace {
bool is_lower_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}
} // namespace

std::optional<std::string> normalize_ski(std::string_view input) {
    std::string out;
    out.reserve(ski_hex_length);
    for (char c : input) {
        if (c == ' ' || c == '-') continue;
        if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
        if (!is_lower_hex(c) || out.size() == ski_hex_length) return std::nullopt;
        out.push_back(c);
    }
    if (out.size() != ski_hex_length) return std::nullopt;
    return out;
}

bool is_canonical_ski(std::string_view ski) {
    if (ski.size() != ski_hex_length) return false;
    for (char c : ski)
        if (!is_lower_hex(c)) return false;
    return true;
}

} // namespace ship
