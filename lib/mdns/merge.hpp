// Turns what Avahi reports per interface and IP protocol into one entry per peer SKI: the latest
// announcement's TXT fields, with every address the peer was reached under, best first. Pure, so every merge
// rule is testable.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "mdns/txt.hpp"

namespace ship::mdns {

// One resolved service instance as seen on one interface over one IP protocol.
struct Sighting {
    ServiceEntry entry;         // parsed TXT plus instance, host name, port and this sighting's one address
    std::uint64_t sequence = 0; // larger = resolved later; its fields win when sightings of one SKI disagree
};

// One entry per SKI, sorted by SKI; `own_ski` (canonical) is left out, so a node never discovers itself.
std::vector<ServiceEntry> merge_sightings(const std::vector<Sighting>& sightings, std::string_view own_ski);

} // namespace ship::mdns
