// The SKI (Subject Key Identifier) text form SHIP uses to name a node: 40 lower-case hex characters.
// `normalize_ski` accepts what users type (spaces, '-', upper case) and refuses anything else.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ship {

inline constexpr std::size_t ski_hex_length = 40;

// Removes spaces and '-', lower-cases; nullopt unless exactly 40 hex characters remain.
std::optional<std::string> normalize_ski(std::string_view input);

// True for the canonical form only (40 lower-case hex, nothing else).
bool is_canonical_ski(std::string_view ski);

// How logs name a peer: the first 8 hex digits of its SKI.
inline std::string short_ski(std::string_view ski) {
    return std::string(ski.substr(0, 8));
}

} // namespace ship
