#include "hub/address_list.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <netinet/in.h>

namespace ship::hub {

bool is_numeric_host(std::string_view host) {
    const std::string bare(host.substr(0, host.find('%')));
    in_addr v4{};
    in6_addr v6{};
    return inet_pton(AF_INET, bare.c_str(), &v4) == 1 || inet_pton(AF_INET6, bare.c_str(), &v6) == 1;
}

std::vector<PeerAddress> dial_order(const std::optional<Announced>& announced,
                                    const std::optional<PeerAddress>& last_worked) {
    std::vector<PeerAddress> order;
    auto add = [&order](PeerAddress a) {
        if (a.host.empty() || a.port == 0) return;
        if (a.path.empty()) a.path = "/ship/";
        if (std::find(order.begin(), order.end(), a) == order.end()) order.push_back(std::move(a));
    };
    if (last_worked) {
        // What completed a handshake last goes first, but only while the peer still announces it (an
        // address it no longer announces may belong to another device by now); without an announcement it
        // is all we know.
        const bool still_announced =
            !announced ||
            std::any_of(announced->addresses.begin(), announced->addresses.end(),
                        [&](const std::string& a) { return a == last_worked->host; }) ||
            last_worked->host == announced->host_name;
        if (still_announced && (!announced || last_worked->port == announced->port)) add(*last_worked);
    }
    if (announced) {
        for (const auto& address : announced->addresses)
            add(PeerAddress{address, announced->port, announced->path});
        add(PeerAddress{announced->host_name, announced->port, announced->path});
    }
    if (order.empty() && last_worked) add(*last_worked);
    return order;
}

std::vector<PeerAddress> resolved_candidates(const PeerAddress& name,
                                             const std::vector<std::string>& addresses,
                                             const std::vector<PeerAddress>& done) {
    std::vector<PeerAddress> out;
    for (const auto& address : addresses) {
        PeerAddress a{address, name.port, name.path};
        if (std::find(done.begin(), done.end(), a) == done.end() &&
            std::find(out.begin(), out.end(), a) == out.end())
            out.push_back(std::move(a));
    }
    return out;
}

} // namespace ship::hub
