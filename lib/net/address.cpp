// Socket and host addresses in the forms SHIP logs and HTTP need; IPv6 zones are kept (link-local peers).
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "net/detail.hpp"

namespace ship::net::detail {

std::string display_address(std::string_view host, std::uint16_t port) {
    const bool v6 = host.find(':') != std::string_view::npos;
    std::string out;
    if (v6) out += '[';
    out += host;
    if (v6) out += ']';
    out += ':';
    out += std::to_string(port);
    return out;
}

std::string host_header_value(std::string_view host, std::uint16_t port) {
    if (host.find(':') == std::string_view::npos) return display_address(host, port);
    std::string escaped;
    for (char c : host) {
        if (c == '%')
            escaped += "%25";
        else
            escaped += c;
    }
    return "[" + escaped + "]:" + std::to_string(port);
}

std::string peer_address_of_fd(int fd) {
    if (fd < 0) return {};
    sockaddr_storage storage{};
    socklen_t size = sizeof(storage);
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&storage), &size) != 0) return {};
    if (storage.ss_family == AF_INET6) {
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; show them as the IPv4 they are.
        auto& v6 = reinterpret_cast<sockaddr_in6&>(storage);
        if (IN6_IS_ADDR_V4MAPPED(&v6.sin6_addr)) {
            sockaddr_in v4{};
            v4.sin_family = AF_INET;
            v4.sin_port = v6.sin6_port;
            std::memcpy(&v4.sin_addr, &v6.sin6_addr.s6_addr[12], 4);
            std::memcpy(&storage, &v4, sizeof(v4));
            size = sizeof(v4);
        }
    }
    char host[NI_MAXHOST], service[NI_MAXSERV];
    if (getnameinfo(reinterpret_cast<sockaddr*>(&storage), size, host, sizeof(host), service, sizeof(service),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return {};
    return display_address(host, static_cast<std::uint16_t>(std::stoul(service)));
}

} // namespace ship::net::detail
