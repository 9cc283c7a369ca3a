#include "mdns/merge.hpp"

#include <map>

#include "mdns/address.hpp"

namespace ship::mdns {

std::vector<ServiceEntry> merge_sightings(const std::vector<Sighting>& sightings, std::string_view own_ski) {
    struct Merged {
        const Sighting* latest = nullptr;
        std::vector<std::string> addresses;
    };
    std::map<std::string_view, Merged> by_ski;
    for (const auto& sighting : sightings) {
        if (sighting.entry.ski == own_ski) continue;
        auto& merged = by_ski[sighting.entry.ski];
        if (!merged.latest || sighting.sequence > merged.latest->sequence) merged.latest = &sighting;
        merged.addresses.insert(merged.addresses.end(), sighting.entry.addresses.begin(),
                                sighting.entry.addresses.end());
    }
    std::vector<ServiceEntry> out;
    out.reserve(by_ski.size());
    for (auto& [ski, merged] : by_ski) {
        ServiceEntry entry = merged.latest->entry;
        entry.addresses = std::move(merged.addresses);
        order_addresses(entry.addresses);
        out.push_back(std::move(entry));
    }
    return out;
}

} // namespace ship::mdns
