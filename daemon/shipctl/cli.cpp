#include "cli.hpp"

#include <charconv>
#include <cmath>
#include <sstream>

namespace ship::ctl {

namespace {

const std::vector<CommandSpec> all_commands = {
    {"status", "[FIELD]", "this node: SKI, SHIP ID, port, version, auto-accept, wait-for-trust, counts",
     "Shows what shipd says about itself. With FIELD (ski, ship-id, port, version, auto-accept,\n"
     "wait-for-trust) prints that one value alone, for scripts: PORT=$(shipctl status port).",
     0, 1},
    {"peers", "", "every known peer: SKI, SHIP ID, state, trusted, connected, address, traffic",
     "Lists the peers shipd knows: trusted ones, connected ones, and ones in a handshake.", 0, 0},
    {"discovered", "", "SHIP services seen by mDNS: SKI, SHIP ID, brand, model, type, host, port",
     "Lists the _ship._tcp services shipd sees on the network (empty when shipd runs with --no-mdns).", 0, 0},
    {"trust", "SKI",
     "trust a peer: persist it, approve its pending handshake, dial it if its address is known",
     "SKI is 40 hex characters (spaces, '-' and upper case are fine) or a unique prefix of a peer\n"
     "from `shipctl peers` or `shipctl discovered`.",
     1, 1},
    {"untrust", "SKI", "forget a peer's trust and close its connection",
     "The peer is told with a SHIP close; shipd will not dial it again.", 1, 1},
    {"connect", "SKI HOST PORT", "dial a trusted peer at this address now, and say how it went",
     "For networks without mDNS. The peer must be trusted first (`shipctl trust SKI`). Returns once the\n"
     "SHIP handshake completed, or fails with shipd's reason (refused, no such host, TLS, timeout after\n"
     "20 s). The address is remembered only once it worked. --wait SECONDS also waits for shipd itself.",
     3, 3},
    {"disconnect", "SKI [REASON]", "close a peer's connection politely (a trusted peer is dialled again)",
     "REASON goes into shipd's log and PeerDisconnected. The peer is told with SHIP's connectionClose,\n"
     "whose reason is an enum (shipd sends `unspecific`): free text cannot travel in data exchange.",
     1, 2},
    {"cancel", "SKI", "deny a pending handshake and untrust the peer",
     "For a peer waiting in hello pending (state received-pairing-request).", 1, 1},
    {"send", "SKI JSON|-", "send one SPINE message (plain JSON) to a connected peer",
     "JSON is one SPINE datagram, '{\"datagram\":{\"header\":{...},\"payload\":{...}}}'; '-' reads it\n"
     "from standard input. A message whose SHIP frame would exceed 100 KiB is refused, unsent.",
     2, 2},
    {"monitor", "", "print the hub's signals as they happen, with timestamps, until Ctrl-C",
     "PeerConnected, PeerDisconnected, PeerStateChanged, PeerShipIDChanged, DataReceived and\n"
     "DiscoveredChanged, one line each (one JSON object per line with --json). Says on standard error\n"
     "when it is listening, and when shipd leaves or comes back to the bus.",
     0, 0},
    {"qr", "", "the installation QR text (SHIP;SKI:…;ID:…;…;ENDSHIP;)",
     "The text a commissioning app scans; render it with any QR tool, e.g. `qrencode -t ansi`.", 0, 0},
    {"auto-accept", "[on|off]", "show or set whether untrusted peers are accepted without asking",
     "Mirrors the mDNS TXT `register`; an accepted peer becomes trusted.", 0, 1},
    {"pending", "", "pairing requests waiting for a decision: SKI, SHIP ID, address, device, time left",
     "Unknown peers whose hello waits (state received-pairing-request). Answer with `shipctl trust SKI`\n"
     "or `shipctl cancel SKI`, or let `shipctl agent` ask you.",
     0, 0},
    {"agent", "", "answer pairing requests interactively (y/n), as the registered pairing agent",
     "Registers shipctl as shipd's pairing agent (org.shipd.Hub1.Agent1) and prints each request with\n"
     "its details, asking yes or no: yes trusts the peer, no denies it (its new requests are refused for\n"
     "pairing_quiet_period). Requests decided elsewhere, expired or gone are shown as cancelled. If another\n"
     "agent is registered, this one waits in line and takes over when that one leaves. Ctrl-C stops.\n"
     "With --json, one JSON object per event (request, cancel, approved, denied, release).",
     0, 0},
    {"block", "SKI", "refuse a SKI inside TLS from now on (persisted); closes its connection",
     "A blocked SKI never reaches the SHIP handshake and is never dialled; trust is kept for when it\n"
     "is unblocked. Works for a SKI shipd has not seen yet (give the full SKI).",
     1, 1},
    {"unblock", "SKI", "lift a block", "The peer may connect (and, if trusted, is dialled) again.", 1, 1},
    {"info", "SKI", "every property shipd has for one peer",
     "SHIP ID, state, error, trust, connection, address, device, counters, PairingDeadline, Blocked.", 1, 1},
    {"help", "[COMMAND]", "this text, or one command's", "", 0, 1},
};

constexpr std::string_view options_help =
    "Options (anywhere on the line):\n"
    "  --system              talk to shipd on the system bus (default)\n"
    "  --session             talk to shipd on the session bus\n"
    "  --bus-address ADDR    talk to shipd on the bus at ADDR (e.g. unix:path=/run/x/bus)\n"
    "  --wait SECONDS        wait that long for shipd to appear on the bus, and for `connect` to complete\n"
    "  --json                machine-readable output (one JSON document; one object per line for monitor)\n"
    "  -h, --help            help (also after a command)\n"
    "  --version             shipctl's version\n";

constexpr std::string_view exit_help =
    "Exit codes: 0 done; 1 shipd refused, is not running, or a wait ran out; 2 usage error, including\n"
    "a SKI that is malformed, matches no known peer, or matches more than one.\n";

double parse_seconds(const std::string& text) {
    double value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc() || ptr != end || !std::isfinite(value) || value < 0 || value > 86400)
        throw CliError(exit_usage, "--wait needs a number of seconds (0 to 86400), not '" + text + "'");
    return value;
}

} // namespace

const std::vector<CommandSpec>& commands() {
    return all_commands;
}

const CommandSpec* find_command(std::string_view name) {
    for (const auto& c : all_commands)
        if (c.name == name) return &c;
    return nullptr;
}

Invocation parse_command_line(const std::vector<std::string>& argv) {
    Invocation inv;
    int bus_choices = 0;
    bool options_done = false;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        const std::string& arg = argv[i];
        const bool is_option = !options_done && arg.size() > 1 && arg[0] == '-';
        if (!is_option) {
            if (inv.command.empty())
                inv.command = arg;
            else
                inv.args.push_back(arg);
            continue;
        }
        std::string name = arg, value;
        bool has_value = false;
        if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
            name = arg.substr(0, eq);
            value = arg.substr(eq + 1);
            has_value = true;
        }
        auto take_value = [&]() -> std::string {
            if (has_value) return value;
            if (i + 1 >= argv.size()) throw CliError(exit_usage, name + " needs a value");
            return argv[++i];
        };
        auto no_value = [&] {
            if (has_value) throw CliError(exit_usage, name + " takes no value");
        };
        if (name == "--") {
            no_value();
            options_done = true;
        } else if (name == "--json") {
            no_value();
            inv.json = true;
        } else if (name == "-h" || name == "--help") {
            no_value();
            inv.help = true;
        } else if (name == "--version") {
            no_value();
            inv.version = true;
        } else if (name == "--system") {
            no_value();
            inv.bus = BusKind::system;
            ++bus_choices;
        } else if (name == "--session") {
            no_value();
            inv.bus = BusKind::session;
            ++bus_choices;
        } else if (name == "--bus-address") {
            inv.bus = BusKind::address;
            inv.bus_address = take_value();
            if (inv.bus_address.empty()) throw CliError(exit_usage, "--bus-address needs a D-Bus address");
            ++bus_choices;
        } else if (name == "--wait") {
            inv.wait_seconds = parse_seconds(take_value());
        } else {
            throw CliError(exit_usage, "unknown option '" + arg + "'");
        }
    }
    if (bus_choices > 1) throw CliError(exit_usage, "give only one of --system, --session and --bus-address");
    if (inv.help || inv.version) return inv;
    if (inv.command.empty()) throw CliError(exit_usage, "no command given");
    const CommandSpec* spec = find_command(inv.command);
    if (!spec) throw CliError(exit_usage, "unknown command '" + inv.command + "'");
    if (inv.args.size() < spec->min_args || inv.args.size() > spec->max_args) {
        std::string usage = "usage: shipctl " + std::string(spec->name);
        if (!spec->synopsis.empty()) usage += " " + std::string(spec->synopsis);
        throw CliError(exit_usage, usage);
    }
    return inv;
}

std::string general_help() {
    std::ostringstream out;
    out << "Usage: shipctl [OPTIONS] COMMAND [ARGS]\n"
           "Controls shipd, the EEBus SHIP daemon, over D-Bus (org.shipd.Hub1).\n\nCommands:\n";
    std::size_t width = 0;
    for (const auto& c : all_commands)
        width = std::max(width, c.name.size() + 1 + c.synopsis.size());
    for (const auto& c : all_commands) {
        std::string head = std::string(c.name) + (c.synopsis.empty() ? "" : " ") + std::string(c.synopsis);
        out << "  " << head << std::string(width - head.size() + 2, ' ') << c.summary << '\n';
    }
    out << '\n' << options_help << '\n' << exit_help;
    out << "\nSKI arguments take a unique prefix of a peer shown by `shipctl peers` or `shipctl "
           "discovered`.\n";
    return out.str();
}

std::string command_help(const CommandSpec& c) {
    std::ostringstream out;
    out << "Usage: shipctl [OPTIONS] " << c.name << (c.synopsis.empty() ? "" : " ") << c.synopsis << "\n"
        << c.summary << ".\n";
    if (!c.details.empty()) out << '\n' << c.details << '\n';
    out << '\n' << options_help << '\n' << exit_help;
    return out.str();
}

std::string bus_label(const Invocation& inv) {
    switch (inv.bus) {
    case BusKind::system:
        return "the system bus";
    case BusKind::session:
        return "the session bus";
    case BusKind::address:
        break;
    }
    return "the bus at " + inv.bus_address;
}

} // namespace ship::ctl
