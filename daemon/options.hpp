// shipd's settings: built-in defaults, overridden by the JSON config file, overridden by the command line.
// Parsing never exits or prints; every refusal is a UsageError whose text names the flag or file:line:column.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/common.h>

namespace ship::daemon {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1; // runtime failure
inline constexpr int exit_usage = 2;   // bad command line or config file

inline constexpr std::string_view default_config_file = "/etc/shipd/shipd.conf";
inline constexpr std::string_view default_state_dir = "/var/lib/shipd";
inline constexpr std::uint16_t default_port = 4711;
// Upper bound of max_connections and max_handshakes: far above one fd per connection on a default system,
// so start-up raises RLIMIT_NOFILE and warns when the limit is still too low.
inline constexpr unsigned max_connection_limit = 65536;

// A bad flag, value, key or config file. main prints what() and exits with exit_usage.
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class Action { run, print_ski, print_qr, version, help };
enum class BusKind { system, session, address };
enum class DoubleConnectionRule { spec, legacy }; // ship-protocol §5: most recent link vs. larger SKI's dial
enum class TlsVersion { tls1_2, tls1_3 };         // the highest version offered; the minimum is always 1.2

struct Options {
    Action action = Action::run;

    std::filesystem::path config_file{default_config_file};
    std::filesystem::path state_dir{default_state_dir};
    std::uint16_t port = default_port; // 0 = any free port
    // IPv4/IPv6 literals or interface names (net::resolve_listen_addresses checks them at start); empty =
    // every address.
    std::vector<std::string> listen_addresses;
    BusKind bus = BusKind::system;
    std::string bus_address; // only with BusKind::address
    bool mdns = true;
    spdlog::level::level_enum log_level = spdlog::level::info;

    // What the node says about itself (mDNS TXT, QR text, certificate subject).
    std::string ship_id; // empty = the hub derives one (brand-model-serial or from the SKI)
    std::string brand = "shipd";
    std::string model = "shipd";
    std::string type = "EnergyManagementSystem";
    std::string serial;
    std::vector<int> categories{2}; // 2 = energy management system; never empty (MDNS_001)
    std::string organization;       // certificate subject O, empty = omitted
    std::string country;            // certificate subject C, two letters or empty

    // Pairing and connection policy.
    bool auto_accept = false;
    bool wait_for_trust = true;
    unsigned max_connections = 32;
    unsigned max_handshakes = 8; // connections not yet in data exchange
    DoubleConnectionRule double_connection_rule = DoubleConnectionRule::spec;
    TlsVersion tls_max_version = TlsVersion::tls1_3;
    // Pairing requests of untrusted peers (lib/hub/pairing.hpp): their deadline, the quiet period after a
    // denial, and their own budget (they never count against max_connections/max_handshakes).
    unsigned pairing_timeout = 120;       // seconds, 1-86400
    unsigned pairing_quiet_period = 600;  // seconds, 0-86400 (0: no quiet period)
    unsigned max_pending = 16;            // untrusted connections at once
    unsigned max_pending_per_address = 4; // of those, from one IP address

    // Where each setting came from, by config key: "FILE:LINE:COL: \"brand\"" or "--ship-id". Only for
    // messages about settings judged together (check_ship_identity); defaults have no entry.
    std::map<std::string, std::string, std::less<>> origins;
    // One line per command-line flag that overrode a key of the config file ("--port 4712 overrides
    // \"port\" at FILE:LINE:COL"), for main to log once at start.
    std::vector<std::string> overrides;
};

// The whole procedure main needs: command line, then the config file it names (or the default one, which
// may be missing), then the command line again on top. `args` is argv including argv[0].
Options load_options(std::span<char* const> args);

// The pieces, for tests and for shipctl-style tools.
// Applies the JSON config text on top of `base`; `origin` (the file name) prefixes every error message.
Options apply_config_text(Options base, std::string_view text, std::string_view origin);
// Reads `path` and applies it; a missing file is an error (load_options skips a missing default file itself).
Options apply_config_file(Options base, const std::filesystem::path& path);

// The own SHIP ID goes into every accessMethods message: ship::Connection refuses one that
// ship::is_safe_control_string refuses, so shipd refuses it at start-up instead (UsageError naming the flag
// or file:line:column and key). Without "ship_id" the derived one (brand-model-serial) is judged by its
// parts. Defined in options_identity.cpp, apart from the parser, which must build without lib/ship (fuzz
// target).
void check_ship_identity(const Options& options);

std::string usage_text(std::string_view program);

std::string_view to_string(DoubleConnectionRule rule);
std::string_view to_string(TlsVersion version);

} // namespace ship::daemon
