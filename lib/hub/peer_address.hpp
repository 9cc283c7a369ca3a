// Where a SHIP peer was last reached or announced: host (IPv4 preferred, IPv6 link-local with its zone),
// port and WebSocket path. Plain value; compares member-wise.
#pragma once

#include <cstdint>
#include <string>

namespace ship::hub {

struct PeerAddress {
    std::string host;
    std::uint16_t port = 0;
    std::string path = "/ship/";

    bool operator==(const PeerAddress&) const = default;
};

} // namespace ship::hub
