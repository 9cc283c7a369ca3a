#include "mdns/address.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <netinet/in.h>

namespace ship::mdns {

namespace {

enum class Rank { ipv4, ipv6, ipv6_link_local, unknown };

Rank rank_of(std::string_view address) {
    const std::string bare(address.substr(0, address.find('%')));
    in_addr v4{};
    if (inet_pton(AF_INET, bare.c_str(), &v4) == 1) return Rank::ipv4;
    in6_addr v6{};
    if (inet_pton(AF_INET6, bare.c_str(), &v6) == 1)
        return v6.s6_addr[0] == 0xfe && (v6.s6_addr[1] & 0xc0) == 0x80 ? Rank::ipv6_link_local : Rank::ipv6;
    return Rank::unknown;
}

} // namespace

std::string with_zone(std::string_view address, std::string_view interface_name) {
    std::string out(address);
    if (!interface_name.empty() && address.find('%') == std::string_view::npos &&
        rank_of(address) == Rank::ipv6_link_local)
        out.append("%").append(interface_name);
    return out;
}

void order_addresses(std::vector<std::string>& addresses) {
    std::sort(addresses.begin(), addresses.end(), [](const std::string& a, const std::string& b) {
        const Rank ra = rank_of(a), rb = rank_of(b);
        return ra != rb ? ra < rb : a < b;
    });
    addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
}

} // namespace ship::mdns
