#include "net/listen_address.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace ship::net {

namespace {

struct HostAddress {
    std::string interface;
    int family = 0;
    std::string address; // numeric, no zone
    bool link_local = false;
};

std::vector<HostAddress> host_addresses() {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0)
        throw ListenAddressError(std::string("cannot list this host's addresses: ") + std::strerror(errno));
    const std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> owned(list, freeifaddrs);
    std::vector<HostAddress> out;
    for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
        if (i->ifa_addr == nullptr || i->ifa_name == nullptr) continue;
        char text[INET6_ADDRSTRLEN] = {};
        HostAddress a;
        a.interface = i->ifa_name;
        a.family = i->ifa_addr->sa_family;
        if (a.family == AF_INET) {
            inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, text,
                      sizeof text);
        } else if (a.family == AF_INET6) {
            const auto* v6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
            inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
            a.link_local = IN6_IS_ADDR_LINKLOCAL(&v6->sin6_addr);
        } else {
            continue;
        }
        a.address = text;
        out.push_back(std::move(a));
    }
    return out;
}

// The canonical text of a literal ("::0001" → "::1"), or "" if `text` is none of `family`.
std::string canonical(int family, const std::string& text) {
    unsigned char raw[sizeof(in6_addr)];
    if (inet_pton(family, text.c_str(), raw) != 1) return {};
    char out[INET6_ADDRSTRLEN] = {};
    inet_ntop(family, raw, out, sizeof out);
    return out;
}

std::string known_addresses(const std::vector<HostAddress>& host) {
    std::string text;
    for (const auto& a : host) {
        text += text.empty() ? "" : ", ";
        text += a.address + (a.link_local ? "%" + a.interface : std::string()) + " (" + a.interface + ")";
    }
    return text.empty() ? std::string("none") : text;
}

} // namespace

std::string display_listen_address(std::string_view spec, std::uint16_t port) {
    const std::string host = spec.empty() ? std::string("::") : std::string(spec);
    if (host.find(':') == std::string::npos) return host + ":" + std::to_string(port);
    return "[" + host + "]:" + std::to_string(port);
}

bool is_listen_address_syntax(std::string_view text) {
    if (text.empty()) return true;
    const std::string copy(text);
    const auto percent = copy.find('%');
    if (!canonical(AF_INET, copy).empty()) return true;
    if (!canonical(AF_INET6, copy.substr(0, percent)).empty())
        return percent == std::string::npos ||
               (percent + 1 < copy.size() && percent + 1 + IFNAMSIZ > copy.size());
    // An interface name: what the kernel accepts (dev_valid_name), and no ':' so it is never half an address.
    if (text.size() >= IFNAMSIZ || text == "." || text == "..") return false;
    return std::none_of(text.begin(), text.end(), [](char c) {
        return c == '/' || c == ':' || c == '%' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
    });
}

std::vector<ListenAddress> resolve_listen_addresses(const std::vector<std::string>& specs) {
    std::vector<ListenAddress> out;
    const auto add = [&](ListenAddress a) {
        if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(std::move(a));
    };
    if (specs.empty() || (specs.size() == 1 && specs.front().empty())) return {ListenAddress{}};
    const auto host = host_addresses();
    for (const auto& spec : specs) {
        if (spec.empty())
            throw ListenAddressError("listen address \"\" (every address) cannot be combined with others");
        if (!is_listen_address_syntax(spec))
            throw ListenAddressError("listen address '" + spec +
                                     "' is neither an IP address nor an interface name");
        if (const auto v4 = canonical(AF_INET, spec); !v4.empty()) {
            const bool local =
                v4 == "0.0.0.0" || std::any_of(host.begin(), host.end(), [&](const HostAddress& a) {
                    return a.family == AF_INET && a.address == v4;
                });
            if (!local)
                throw ListenAddressError("listen address " + spec +
                                         " is not an address of this host (it has: " + known_addresses(host) +
                                         ")");
            add(ListenAddress{v4, {}});
            continue;
        }
        const auto percent = spec.find('%');
        if (const auto v6 = canonical(AF_INET6, spec.substr(0, percent)); !v6.empty()) {
            const std::string zone = percent == std::string::npos ? std::string() : spec.substr(percent + 1);
            if (v6 == "::") {
                add(ListenAddress{v6, {}});
                continue;
            }
            const auto match = std::find_if(host.begin(), host.end(), [&](const HostAddress& a) {
                return a.family == AF_INET6 && a.address == v6 && (zone.empty() || a.interface == zone);
            });
            if (match == host.end())
                throw ListenAddressError("listen address " + spec +
                                         " is not an address of this host (it has: " + known_addresses(host) +
                                         ")");
            add(ListenAddress{v6, match->link_local ? match->interface : std::string()});
            continue;
        }
        // An interface name: each of its addresses, IPv4 first (as getifaddrs lists them).
        bool found = false;
        for (const auto& a : host) {
            if (a.interface != spec) continue;
            found = true;
            add(ListenAddress{a.address, a.link_local ? a.interface : std::string()});
        }
        if (!found) {
            const bool exists = if_nametoindex(spec.c_str()) != 0;
            throw ListenAddressError(exists
                                         ? "interface " + spec + " has no IPv4 or IPv6 address to listen on"
                                         : "listen address '" + spec +
                                               "' is neither an address of this host nor an interface name "
                                               "(it has: " +
                                               known_addresses(host) + ")");
        }
    }
    return out;
}

} // namespace ship::net
