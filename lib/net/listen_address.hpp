// Where shipd listens: `listen_address` settings (IPv4/IPv6 literals, interface names, "" for every address)
// turned into numeric addresses this host has, checked before anything is bound; unknown ones are refused.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ship::net {

// One address to bind, numeric. Plain value.
struct ListenAddress {
    // "127.0.0.1", "::1", "fe80::1" (no zone), "0.0.0.0" (every IPv4), "::" (every IPv6), or "" (every
    // address, IPv6 and IPv4 on one dual-stack socket).
    std::string address;
    std::string zone; // the interface of an IPv6 link-local address ("eth0"), else ""

    // As ServerConfig::listen_address takes it: the address with its zone ("fe80::1%eth0").
    std::string spec() const { return zone.empty() ? address : address + "%" + zone; }
    bool operator==(const ListenAddress&) const = default;
};

// "127.0.0.1:4711", "[::1]:4711", "[fe80::1%eth0]:4711", "[::]:4711" for "" (dual stack) and "::".
std::string display_listen_address(std::string_view spec, std::uint16_t port);

// A value that names no address of this host. what() names it and says why.
class ListenAddressError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// True if `text` could name an interface or an address (syntax only; nothing is looked up).
bool is_listen_address_syntax(std::string_view text);

// Each spec, in order: a literal must be an address of one of this host's interfaces (or 0.0.0.0 / ::),
// an interface name stands for every IPv4 and IPv6 address it has now. Duplicates are dropped. No specs, or
// the one spec "", is every address. Throws ListenAddressError naming the first spec that fails.
std::vector<ListenAddress> resolve_listen_addresses(const std::vector<std::string>& specs);

} // namespace ship::net
