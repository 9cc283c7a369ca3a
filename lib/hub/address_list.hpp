// Where to dial a peer, in the order to try: the address that last completed a handshake first, then what
// mDNS announced (IPv4, global IPv6, IPv6 link-local with its zone), then the announced host name. Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/peer_address.hpp"

namespace ship::hub {

// A numeric IPv4 or IPv6 address (an IPv6 one may carry a zone, "fe80::1%eth0"); anything else is a name to
// resolve first.
bool is_numeric_host(std::string_view host);

// What the peer announced: its numeric addresses best first (lib/mdns orders them) and its host name
// (empty if none), on one port and path.
struct Announced {
    std::vector<std::string> addresses;
    std::string host_name;
    std::uint16_t port = 0;
    std::string path = "/ship/";
};

// One list, no duplicates: `last_worked` (if any) first, where it was reached (its own port and path);
// then each announced address, then the host name (which the dialler resolves when it gets there). With
// nothing announced, `last_worked` alone.
std::vector<PeerAddress> dial_order(const std::optional<Announced>& announced,
                                    const std::optional<PeerAddress>& last_worked);

// The numeric addresses a name resolved to, as candidates to dial after `done` (those not tried yet).
std::vector<PeerAddress> resolved_candidates(const PeerAddress& name,
                                             const std::vector<std::string>& addresses,
                                             const std::vector<PeerAddress>& done);

} // namespace ship::hub
