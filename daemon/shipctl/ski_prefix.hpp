// Resolving what a user typed for a SKI: a full SKI (any spelling normalize_ski accepts) stands for itself;
// anything shorter must be the prefix of exactly one SKI shipd knows (peers and discovered services).
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ship::ctl {

struct SkiNotHex {};                     // not hex, or longer than a SKI
struct SkiNoMatch {};                    // a prefix no known SKI starts with
struct SkiAmbiguous {                    // a prefix several known SKIs start with
    std::vector<std::string> candidates; // sorted, unique
};
using SkiResolution = std::variant<std::string, SkiNotHex, SkiNoMatch, SkiAmbiguous>;

// True when `input` is a full SKI: no lookup is needed (and none wanted: trusting a SKI shipd has never
// seen is normal).
bool is_full_ski(std::string_view input);

SkiResolution resolve_ski(std::string_view input, const std::vector<std::string>& known);

} // namespace ship::ctl
