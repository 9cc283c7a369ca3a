// Peer addresses as a dialler needs them: an IPv6 link-local address carries its interface as zone, and the
// list is ordered by preference (IPv4 first), so the first entry is the one to dial.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ship::mdns {

// `address` (numeric IPv4 or IPv6 text) as a dialler takes it: a link-local IPv6 address (fe80::/10) gains
// "%<interface>", because without a zone connect() fails with EINVAL. Anything else is returned unchanged.
std::string with_zone(std::string_view address, std::string_view interface_name);

// Sorts best first and drops duplicates: IPv4, then global/unique-local IPv6, then link-local IPv6; text
// order within a rank, so the result does not depend on the order Avahi reported the addresses in.
void order_addresses(std::vector<std::string>& addresses);

} // namespace ship::mdns
