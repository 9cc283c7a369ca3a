#include "commands.hpp"

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <ctime>
#include <iostream>
#include <sstream>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "hub_client.hpp"
#include "json_out.hpp"
#include "pairing_commands.hpp"
#include "ski_prefix.hpp"
#include "table.hpp"

namespace ship::ctl {

namespace {

using Clock = std::chrono::steady_clock;

std::string on_off(bool v) {
    return v ? "on" : "off";
}

std::string short_ski(const std::string& ski) {
    return ski.size() > 8 ? ski.substr(0, 8) + "…" : ski;
}

// The SKI the user means, or a usage error that says how to name it.
std::string resolve(HubClient& client, const std::string& input) {
    if (is_full_ski(input)) return std::get<std::string>(resolve_ski(input, {}));
    const auto result = resolve_ski(input, client.known_skis());
    if (const auto* ski = std::get_if<std::string>(&result)) return *ski;
    if (std::holds_alternative<SkiNotHex>(result))
        throw CliError(exit_usage,
                       "'" + input +
                           "' is not a SKI: give its 40 hex characters, or a unique prefix of one "
                           "shown by `shipctl peers` or `shipctl discovered`");
    if (std::holds_alternative<SkiNoMatch>(result))
        throw CliError(exit_usage,
                       "no known peer's SKI starts with '" + input +
                           "' (see `shipctl peers` and `shipctl discovered`; a peer shipd has not "
                           "seen yet needs its full SKI)");
    std::string text = "'" + input + "' matches more than one SKI; give more of it:";
    for (const auto& c : std::get<SkiAmbiguous>(result).candidates)
        text += "\n  " + c;
    throw CliError(exit_usage, text);
}

std::string read_stdin() {
    std::string text;
    char buffer[4096];
    for (;;) {
        const ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
        if (n == 0) return text;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw CliError(exit_failure, "cannot read the JSON from standard input");
        text.append(buffer, static_cast<std::size_t>(n));
    }
}

std::uint16_t parse_port(const std::string& text) {
    unsigned value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size() || value == 0 || value > 65535)
        throw CliError(exit_usage, "PORT must be a TCP port from 1 to 65535, not '" + text + "'");
    return static_cast<std::uint16_t>(value);
}

// Local time with milliseconds; `iso` adds the 'T' and the UTC offset (for JSON).
std::string timestamp(std::chrono::system_clock::time_point t, bool iso) {
    const auto since = t.time_since_epoch();
    const std::time_t secs = std::chrono::duration_cast<std::chrono::seconds>(since).count();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since).count() % 1000;
    std::tm tm{};
    localtime_r(&secs, &tm);
    char date[32], zone[8];
    std::strftime(date, sizeof date, iso ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
    std::strftime(zone, sizeof zone, "%z", &tm);
    char out[64];
    std::snprintf(out, sizeof out, "%s.%03d%s", date, static_cast<int>(ms), iso ? zone : "");
    return out;
}

template <typename T>
T variant_or(const std::map<std::string, sdbus::Variant>& props, const std::string& name, T fallback) {
    const auto it = props.find(name);
    if (it == props.end()) return fallback;
    try {
        return it->second.get<T>();
    } catch (const sdbus::Error&) {
        return fallback;
    }
}

void print_done(const Invocation& inv, const std::string& ski, const std::string& sentence) {
    if (inv.json) {
        JsonOut j;
        j.w.StartObject();
        j.field("command", inv.command);
        j.field("ski", ski);
        j.field("ok", true);
        j.w.EndObject();
        j.print();
    } else {
        std::cout << sentence << '\n';
    }
}

// ------------------------------------------------------------------------------------------------ status

int cmd_status(HubClient& c, const Invocation& inv) {
    auto& hub = c.hub();
    const std::string ski = c.guarded([&] { return hub.LocalSKI(); });
    const std::string ship_id = c.guarded([&] { return hub.ShipID(); });
    const std::uint16_t port = c.guarded([&] { return hub.Port(); });
    const std::string version = c.guarded([&] { return hub.Version(); });
    const bool auto_accept = c.guarded([&] { return hub.AutoAccept(); });
    const bool wait_for_trust = c.guarded([&] { return hub.WaitForTrust(); });

    if (!inv.args.empty()) {
        const std::string& f = inv.args[0];
        std::string value;
        if (f == "ski")
            value = ski;
        else if (f == "ship-id")
            value = ship_id;
        else if (f == "port")
            value = std::to_string(port);
        else if (f == "version")
            value = version;
        else if (f == "auto-accept")
            value = on_off(auto_accept);
        else if (f == "wait-for-trust")
            value = on_off(wait_for_trust);
        else
            throw CliError(exit_usage, "unknown FIELD '" + f +
                                           "': ski, ship-id, port, version, auto-accept, wait-for-trust");
        if (inv.json) {
            JsonOut j;
            j.w.StartObject();
            if (f == "port")
                j.field(f, static_cast<unsigned>(port));
            else if (f == "auto-accept")
                j.field(f, auto_accept);
            else if (f == "wait-for-trust")
                j.field(f, wait_for_trust);
            else
                j.field(f, value);
            j.w.EndObject();
            j.print();
        } else {
            std::cout << value << '\n';
        }
        return exit_ok;
    }

    const auto peers = c.guarded([&] { return hub.ListPeers(); });
    const auto discovered = c.guarded([&] { return hub.ListDiscovered(); });
    unsigned trusted = 0, connected = 0;
    for (const auto& p : peers) {
        trusted += p.get<3>() ? 1 : 0;
        connected += p.get<4>() ? 1 : 0;
    }
    if (inv.json) {
        JsonOut j;
        j.w.StartObject();
        j.field("ski", ski);
        j.field("ship_id", ship_id);
        j.field("port", static_cast<unsigned>(port));
        j.field("version", version);
        j.field("auto_accept", auto_accept);
        j.field("wait_for_trust", wait_for_trust);
        j.key("peers");
        j.w.StartObject();
        j.field("known", static_cast<unsigned>(peers.size()));
        j.field("trusted", trusted);
        j.field("connected", connected);
        j.w.EndObject();
        j.field("discovered", static_cast<unsigned>(discovered.size()));
        j.w.EndObject();
        j.print();
        return exit_ok;
    }
    const bool colour = want_colour();
    Table t({"", ""});
    t.add({"SKI", ski});
    t.add({"SHIP ID", ship_id});
    t.add({"Port", std::to_string(port)});
    t.add({"Version", version});
    t.add({"Auto-accept", Cell(on_off(auto_accept), auto_accept ? Tone::warn : Tone::plain)});
    t.add({"Wait for trust", on_off(wait_for_trust)});
    t.add({"Peers", std::to_string(peers.size()) + " known, " + std::to_string(trusted) + " trusted, " +
                        std::to_string(connected) + " connected"});
    t.add({"Discovered", std::to_string(discovered.size())});
    // A key/value list reads better without the empty header line.
    std::ostringstream text;
    t.print(text, colour);
    const std::string s = text.str();
    std::cout << s.substr(s.find('\n') + 1);
    return exit_ok;
}

// ------------------------------------------------------------------------------------------------- peers

int cmd_peers(HubClient& c, const Invocation& inv) {
    const auto peers = c.guarded([&] { return c.hub().ListPeers(); });
    auto details = c.peer_details();
    if (inv.json) {
        JsonOut j;
        j.w.StartArray();
        for (const auto& p : peers) {
            const auto& d = details[p.get<0>()];
            j.w.StartObject();
            j.field("ski", p.get<0>());
            j.field("ship_id", p.get<1>());
            j.field("state", p.get<2>());
            j.field("trusted", p.get<3>());
            j.field("connected", p.get<4>());
            j.field("error", variant_or<std::string>(d, "Error", ""));
            j.field("brand", variant_or<std::string>(d, "Brand", ""));
            j.field("model", variant_or<std::string>(d, "Model", ""));
            j.field("type", variant_or<std::string>(d, "Type", ""));
            j.field("host", variant_or<std::string>(d, "Host", ""));
            j.field("port", static_cast<unsigned>(variant_or<std::uint16_t>(d, "Port", 0)));
            j.field("connected_since_us", variant_or<std::uint64_t>(d, "ConnectedSince", 0));
            j.field("messages_in", variant_or<std::uint64_t>(d, "MessagesIn", 0));
            j.field("messages_out", variant_or<std::uint64_t>(d, "MessagesOut", 0));
            j.field("bytes_in", variant_or<std::uint64_t>(d, "BytesIn", 0));
            j.field("bytes_out", variant_or<std::uint64_t>(d, "BytesOut", 0));
            j.w.EndObject();
        }
        j.w.EndArray();
        j.print();
        return exit_ok;
    }
    if (peers.empty()) {
        std::cout
            << "no peers known: `shipctl discovered` shows what mDNS sees, `shipctl trust SKI` adds one\n";
        return exit_ok;
    }
    Table t({"SKI", "SHIP ID", "STATE", "TRUSTED", "CONNECTED", "ADDRESS", "MSGS IN/OUT"});
    for (const auto& p : peers) {
        const auto& d = details[p.get<0>()];
        const std::string host = variant_or<std::string>(d, "Host", "");
        const auto port = variant_or<std::uint16_t>(d, "Port", 0);
        std::string address = host.empty()                          ? "-"
                              : host.find(':') != std::string::npos ? "[" + host + "]"
                                                                    : host;
        if (!host.empty() && port != 0) address += ":" + std::to_string(port);
        std::string state = p.get<2>();
        const std::string error = variant_or<std::string>(d, "Error", "");
        if (!error.empty()) state += " (" + error + ")";
        const bool bad = p.get<2>() == "error" || p.get<2>() == "remote-denied-trust";
        t.add({p.get<0>(), p.get<1>().empty() ? "-" : p.get<1>(),
               Cell(state, bad                         ? Tone::bad
                           : p.get<2>() == "completed" ? Tone::good
                                                       : Tone::plain),
               Cell(p.get<3>() ? "yes" : "no", p.get<3>() ? Tone::plain : Tone::warn),
               Cell(p.get<4>() ? "yes" : "no", p.get<4>() ? Tone::good : Tone::dim), address,
               std::to_string(variant_or<std::uint64_t>(d, "MessagesIn", 0)) + "/" +
                   std::to_string(variant_or<std::uint64_t>(d, "MessagesOut", 0))});
    }
    t.print(std::cout, want_colour());
    return exit_ok;
}

int cmd_discovered(HubClient& c, const Invocation& inv) {
    const auto services = c.guarded([&] { return c.hub().ListDiscovered(); });
    if (inv.json) {
        JsonOut j;
        j.w.StartArray();
        for (const auto& s : services) {
            j.w.StartObject();
            j.field("ski", s.get<0>());
            j.field("ship_id", s.get<1>());
            j.field("brand", s.get<2>());
            j.field("model", s.get<3>());
            j.field("type", s.get<4>());
            j.field("host", s.get<5>());
            j.field("port", static_cast<unsigned>(s.get<6>()));
            j.w.EndObject();
        }
        j.w.EndArray();
        j.print();
        return exit_ok;
    }
    if (services.empty()) {
        std::cout << "no SHIP services discovered (is mDNS on, and avahi-daemon running?)\n";
        return exit_ok;
    }
    Table t({"SKI", "SHIP ID", "BRAND", "MODEL", "TYPE", "HOST", "PORT"});
    for (const auto& s : services)
        t.add({s.get<0>(), s.get<1>(), s.get<2>(), s.get<3>(), s.get<4>(), s.get<5>(),
               std::to_string(s.get<6>())});
    t.print(std::cout, want_colour());
    return exit_ok;
}

// ------------------------------------------------------------------------------------------ peer actions

int cmd_trust(HubClient& c, const Invocation& inv) {
    const auto ski = resolve(c, inv.args[0]);
    c.guarded([&] { c.hub().Trust(ski); }, ski);
    print_done(inv, ski, "trusted " + ski);
    return exit_ok;
}

int cmd_untrust(HubClient& c, const Invocation& inv) {
    const auto ski = resolve(c, inv.args[0]);
    c.guarded([&] { c.hub().Untrust(ski); }, ski);
    print_done(inv, ski, "untrusted " + ski + " (its connection is closed; it will not be dialled again)");
    return exit_ok;
}

int cmd_cancel(HubClient& c, const Invocation& inv) {
    const auto ski = resolve(c, inv.args[0]);
    c.guarded([&] { c.hub().CancelPairing(ski); }, ski);
    print_done(inv, ski, "cancelled pairing with " + ski + " (not trusted)");
    return exit_ok;
}

int cmd_disconnect(HubClient& c, const Invocation& inv) {
    const auto ski = resolve(c, inv.args[0]);
    const std::string reason = inv.args.size() > 1 ? inv.args[1] : std::string();
    c.guarded([&] { c.hub().Disconnect(ski, reason); }, ski);
    print_done(inv, ski, "disconnected " + ski);
    return exit_ok;
}

std::string peer_state(HubClient& c, const std::string& ski, bool* connected = nullptr) {
    for (const auto& p : c.guarded([&] { return c.hub().ListPeers(); }))
        if (p.get<0>() == ski) {
            if (connected) *connected = p.get<4>();
            return p.get<2>();
        }
    if (connected) *connected = false;
    return "none";
}

int cmd_connect(HubClient& c, const Invocation& inv) {
    const auto ski = resolve(c, inv.args[0]);
    const std::string& host = inv.args[1];
    const auto port = parse_port(inv.args[2]);
    c.take_signals(); // only what follows the call counts
    // shipd replies once the peer is in data exchange, or with why not (ConnectFailed, Timeout).
    c.guarded([&] { c.hub().Connect(ski, host, port); }, ski);
    if (inv.wait_seconds <= 0) {
        print_done(inv, ski, "connected to " + ski + " at " + host + ":" + std::to_string(port));
        return exit_ok;
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(
                                             static_cast<long long>(std::llround(inv.wait_seconds * 1000)));
    bool connected = false;
    std::string failure;
    peer_state(c, ski, &connected);
    c.pump_until(
        [&] {
            for (const auto& s : c.take_signals()) {
                if (s.args.empty() || s.args[0] != ski) continue;
                if (s.name == "PeerConnected") connected = true;
                if (s.name == "PeerStateChanged" && s.args[1] == "remote-denied-trust")
                    failure = "peer " + ski + " does not trust this node: on the peer, run `shipctl trust " +
                              c.guarded([&] { return c.hub().LocalSKI(); }) + "`";
                else if (s.name == "PeerStateChanged" && s.args[1] == "error")
                    failure = "the SHIP handshake with " + ski + " failed: " + s.args[2] +
                              " (shipd keeps dialling it; `shipctl monitor` shows the attempts)";
            }
            return connected || !failure.empty();
        },
        deadline);
    if (!failure.empty() && !connected) throw CliError(exit_failure, failure);
    if (!connected) {
        const std::string state = peer_state(c, ski, &connected);
        if (!connected)
            throw CliError(exit_failure,
                           "not connected to " + ski + " within " +
                               std::to_string(static_cast<long long>(std::ceil(inv.wait_seconds))) +
                               " s (state " + state + "); shipd keeps dialling it. Does the peer listen at " +
                               host + ":" + std::to_string(port) +
                               ", and does it trust this node (`shipctl trust " +
                               c.guarded([&] { return c.hub().LocalSKI(); }) + "` on the peer)?");
    }
    print_done(inv, ski, "connected to " + ski + " at " + host + ":" + std::to_string(port));
    return exit_ok;
}

int cmd_send(HubClient& c, const Invocation& inv) {
    std::string json = inv.args[1];
    if (json == "-") json = read_stdin();
    while (!json.empty() && std::isspace(static_cast<unsigned char>(json.back())))
        json.pop_back();
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError())
        throw CliError(exit_usage,
                       "JSON is not valid: " + std::string(rapidjson::GetParseError_En(doc.GetParseError())) +
                           " (at byte " + std::to_string(doc.GetErrorOffset()) + ")");
    if (!doc.IsObject()) throw CliError(exit_usage, "JSON must be one object, e.g. '{\"datagram\":{...}}'");
    const auto ski = resolve(c, inv.args[0]);
    c.guarded([&] { c.hub().SendData(ski, json); }, ski);
    if (inv.json) {
        JsonOut j;
        j.w.StartObject();
        j.field("command", inv.command);
        j.field("ski", ski);
        j.field("ok", true);
        j.field("bytes", static_cast<std::uint64_t>(json.size()));
        j.w.EndObject();
        j.print();
    } else {
        std::cout << "sent " << json.size() << " bytes to " << ski << '\n';
    }
    return exit_ok;
}

// ------------------------------------------------------------------------------------------------ monitor

void print_signal(const HubSignal& s, bool json, bool colour) {
    if (json) {
        JsonOut j;
        j.w.StartObject();
        j.field("time", timestamp(s.time, true));
        j.field("signal", s.name);
        static const std::map<std::string, std::vector<const char*>> names = {
            {"PeerConnected", {"ski"}},
            {"PeerDisconnected", {"ski", "reason"}},
            {"PeerStateChanged", {"ski", "state", "error"}},
            {"PeerShipIDChanged", {"ski", "ship_id"}},
            {"DiscoveredChanged", {}},
            {"DataReceived", {"ski", "json"}},
        };
        const auto& keys = names.at(s.name);
        for (std::size_t i = 0; i < keys.size() && i < s.args.size(); ++i)
            j.field(keys[i], s.args[i]);
        j.w.EndObject();
        j.print();
        return;
    }
    Tone tone = Tone::plain;
    if (s.name == "PeerConnected") tone = Tone::good;
    if (s.name == "PeerDisconnected") tone = Tone::warn;
    if (s.name == "PeerStateChanged" && s.args.size() > 2 && !s.args[2].empty()) tone = Tone::bad;
    std::string line = paint(timestamp(s.time, false), Tone::dim, colour) + "  ";
    std::string name = s.name;
    name.resize(std::max<std::size_t>(name.size(), 17), ' ');
    line += paint(name, tone, colour);
    for (const auto& a : s.args)
        if (!a.empty()) line += "  " + a;
    std::cout << line << '\n' << std::flush;
}

int cmd_monitor(HubClient& c, const Invocation& inv) {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    const int sfd = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) throw CliError(exit_failure, "cannot watch for Ctrl-C (signalfd failed)");

    // Subscribed since the client was built; this call proves shipd is there before we say we listen.
    const std::string own = c.guarded([&] { return c.hub().LocalSKI(); });
    std::cerr << "shipctl: monitoring org.shipd.Hub1 " << short_ski(own) << " on " << bus_label(inv)
              << "; Ctrl-C stops" << std::endl;
    const bool colour = !inv.json && want_colour();
    bool stop = false;
    c.pump_until(
        [&] {
            for (const auto& s : c.take_signals()) {
                if (s.name == "ServiceLost")
                    std::cerr << "shipctl: " << timestamp(s.time, false) << " shipd left " << bus_label(inv)
                              << std::endl;
                else if (s.name == "ServiceBack")
                    std::cerr << "shipctl: " << timestamp(s.time, false) << " shipd is back on "
                              << bus_label(inv) << std::endl;
                else
                    print_signal(s, inv.json, colour);
            }
            signalfd_siginfo info{};
            if (read(sfd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) stop = true;
            return stop;
        },
        Clock::time_point::max(), sfd);
    close(sfd);
    return exit_ok;
}

// ------------------------------------------------------------------------------------- qr, auto-accept

int cmd_qr(HubClient& c, const Invocation& inv) {
    const std::string qr = c.guarded([&] { return c.hub().QRCode(); });
    if (inv.json) {
        JsonOut j;
        j.w.StartObject();
        j.field("qr", qr);
        j.w.EndObject();
        j.print();
    } else {
        std::cout << qr << '\n';
    }
    return exit_ok;
}

int cmd_auto_accept(HubClient& c, const Invocation& inv) {
    if (!inv.args.empty()) {
        const std::string& v = inv.args[0];
        bool on = false;
        if (v == "on" || v == "true" || v == "yes" || v == "1")
            on = true;
        else if (v == "off" || v == "false" || v == "no" || v == "0")
            on = false;
        else
            throw CliError(exit_usage, "auto-accept takes on or off, not '" + v + "'");
        c.guarded([&] { c.hub().AutoAccept(on); });
    }
    const bool now = c.guarded([&] { return c.hub().AutoAccept(); });
    if (inv.json) {
        JsonOut j;
        j.w.StartObject();
        j.field("auto_accept", now);
        j.w.EndObject();
        j.print();
    } else {
        std::cout << "auto-accept " << on_off(now) << '\n';
    }
    return exit_ok;
}

} // namespace

int run_command(const Invocation& inv) {
    static const std::map<std::string, int (*)(HubClient&, const Invocation&)> table = {
        {"status", cmd_status},         {"peers", cmd_peers},     {"discovered", cmd_discovered},
        {"trust", cmd_trust},           {"untrust", cmd_untrust}, {"connect", cmd_connect},
        {"disconnect", cmd_disconnect}, {"cancel", cmd_cancel},   {"send", cmd_send},
        {"monitor", cmd_monitor},       {"qr", cmd_qr},           {"auto-accept", cmd_auto_accept},
    };
    const auto it = table.find(inv.command);
    if (it == table.end() && !is_pairing_command(inv.command))
        throw CliError(exit_usage, "unknown command '" + inv.command + "'");
    HubClient client(inv);
    client.wait_for_service();
    if (it == table.end()) return run_pairing_command(client, inv);
    return it->second(client, inv);
}

} // namespace ship::ctl
