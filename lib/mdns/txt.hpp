// SHIP's DNS-SD TXT record (ship-protocol §7): what we announce, byte-exact and in SHIP's order, and what a
// peer's announcement means once checked; plus the installation QR text built from the same fields.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ship::mdns {

inline constexpr std::string_view service_type = "_ship._tcp";
inline constexpr std::string_view ship_path = "/ship/";
inline constexpr std::size_t max_ship_id_bytes = 63;
inline constexpr std::size_t max_text_bytes = 32;  // brand, model, type, serial
inline constexpr int energy_management_system = 2; // the default device category

// What this node announces. Free text (brand, model, type, serial) is cut to 32 bytes on a UTF-8 boundary and
// loses any '=' (a TXT value cannot hold one without confusing peers' key=value split) and ';' (the QR text's
// separator). The SHIP ID names us to peers, so it is refused rather than altered: see `check`.
struct LocalService {
    std::string ship_id; // also the DNS-SD instance name
    std::string ski;     // any form ship::normalize_ski accepts
    std::string brand, model, type, serial;
    std::vector<int> categories{energy_management_system}; // never empty (MDNS_001)
    bool auto_register = false;                            // TXT `register`: we accept pairing without a user
    std::uint16_t port = 0;

    bool operator==(const LocalService&) const = default;
};

// A peer as its announcement describes it. parse_txt fills the TXT fields; the Browser adds where to reach
// it.
struct ServiceEntry {
    std::string ski; // canonical: 40 lower-case hex
    std::string ship_id, brand, model, type, serial, path;
    std::vector<int> categories; // empty when the peer sent none or an unreadable `cat`
    bool auto_register = false;  // TXT `register`

    std::string instance;  // DNS-SD instance name (normally the SHIP ID, "<id> #2" after a name collision)
    std::string host_name; // e.g. "wallbox.local"
    std::uint16_t port = 0;
    // Best first: IPv4, then global IPv6, then link-local IPv6 carrying its zone ("fe80::1%eth0").
    std::vector<std::string> addresses;

    bool operator==(const ServiceEntry&) const = default;
};

// Why `service` cannot be announced, or nullopt: SKI not 40 hex digits; SHIP ID empty, over 63 bytes, holding
// '=' or ';', or not UTF-8; free text not UTF-8; no category, or one that is not a positive number.
std::optional<std::string> check(const LocalService& service);

// "key=value" strings in SHIP's order: txtvers, path, id, ski, brand, model, type, register, [serial,] cat.
// Throws std::invalid_argument with check()'s reason.
std::vector<std::string> encode_txt(const LocalService& service);

// `SHIP;SKI:…;ID:…;BRAND:…;TYPE:…;MODEL:…;SERIAL:…;CAT:…;ENDSHIP;` with the same cut values as the TXT;
// SERIAL is left out when empty. Throws std::invalid_argument with check()'s reason.
std::string installation_qr_text(const LocalService& service);

struct TxtParseResult {
    std::optional<ServiceEntry> entry;
    std::string error; // set when entry is empty: names the missing or bad key
};

// Reads a peer's TXT strings ("key=value"; keys case-insensitive, the first of a repeated key wins). Needs
// txtvers=1, id, path, ski (any normalize_ski form) and register=true|false. An unreadable optional `cat` is
// dropped, not fatal: the peer is still reachable and a user can still pair with it.
TxtParseResult parse_txt(const std::vector<std::string>& txt);

// "1,2,7" ⇄ {1, 2, 7}. Parsing wants at least one positive decimal number and nothing but digits and commas.
std::string format_categories(const std::vector<int>& categories);
std::optional<std::vector<int>> parse_categories(std::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that does not end inside a UTF-8 sequence.
std::string_view cut_utf8(std::string_view text, std::size_t max_bytes);

bool is_utf8(std::string_view text);

} // namespace ship::mdns
