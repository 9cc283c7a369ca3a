// shipctl's pairing commands (issue 15): `pending`, `agent` (interactive, like bluetoothctl's agent),
// `block`/`unblock`, `info`. Everything goes through the D-Bus API; the agent is an org.shipd.Hub1.Agent1
// object on shipctl's own connection.
#include "pairing_commands.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <deque>
#include <iostream>
#include <sstream>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "hub1_adaptor.hpp"
#include "hub_client.hpp"
#include "json_out.hpp"
#include "ski_prefix.hpp"
#include "table.hpp"

namespace ship::ctl {

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* agent_path = "/org/shipd/shipctl/agent";
constexpr std::string_view peer_prefix = "/org/shipd/Hub1/peer/";

template <typename T>
T prop(const std::map<std::string, sdbus::Variant>& props, const std::string& name, T fallback) {
    const auto it = props.find(name);
    if (it == props.end()) return fallback;
    try {
        return it->second.get<T>();
    } catch (const sdbus::Error&) {
        return fallback;
    }
}

std::uint64_t now_us() {
    using namespace std::chrono;
    return static_cast<std::uint64_t>(
        duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

std::string seconds_left(std::uint64_t deadline_us) {
    const std::uint64_t now = now_us();
    if (deadline_us <= now) return "0 s";
    return std::to_string((deadline_us - now + 999'999) / 1'000'000) + " s";
}

std::string address(const std::string& host, std::uint16_t port) {
    if (host.empty()) return "-";
    std::string a = host.find(':') != std::string::npos ? "[" + host + "]" : host;
    if (port) a += ":" + std::to_string(port);
    return a;
}

std::string resolve_peer(HubClient& c, const std::string& input) {
    if (is_full_ski(input)) return std::get<std::string>(resolve_ski(input, {}));
    const auto result = resolve_ski(input, c.known_skis());
    if (const auto* ski = std::get_if<std::string>(&result)) return *ski;
    if (std::holds_alternative<SkiNotHex>(result))
        throw CliError(exit_usage,
                       "'" + input + "' is not a SKI: give its 40 hex characters, or a unique prefix");
    if (std::holds_alternative<SkiNoMatch>(result))
        throw CliError(exit_usage, "no known peer's SKI starts with '" + input +
                                       "' (a peer shipd has not seen yet needs its full SKI)");
    std::string text = "'" + input + "' matches more than one SKI; give more of it:";
    for (const auto& s : std::get<SkiAmbiguous>(result).candidates)
        text += "\n  " + s;
    throw CliError(exit_usage, text);
}

// ------------------------------------------------------------------------------------------------ agent

// One AuthorizePeer waiting for the user's y/n.
struct Question {
    std::string peer_path, ski;
    std::map<std::string, sdbus::Variant> details;
    sdbus::Result<bool> reply;
};

class Agent final : public sdbus::AdaptorInterfaces<org::shipd::Hub1::Agent1_adaptor> {
public:
    Agent(sdbus::IConnection& connection, bool json)
        : AdaptorInterfaces(connection, agent_path)
        , json_(json) {
        registerAdaptor();
    }
    ~Agent() { unregisterAdaptor(); }

    std::deque<Question> questions;
    bool released = false;
    bool prompt_due = false; // the first question changed: show it

    void say(const std::string& event, const std::string& ski, const std::string& text,
             const std::map<std::string, sdbus::Variant>* details = nullptr) {
        if (json_) {
            JsonOut j;
            j.w.StartObject();
            j.field("event", event);
            if (!ski.empty()) j.field("ski", ski);
            if (details) {
                j.field("ship_id", prop<std::string>(*details, "ShipID", ""));
                j.field("brand", prop<std::string>(*details, "Brand", ""));
                j.field("model", prop<std::string>(*details, "Model", ""));
                j.field("type", prop<std::string>(*details, "Type", ""));
                j.field("host", prop<std::string>(*details, "Host", ""));
                j.field("port", static_cast<std::uint64_t>(prop<std::uint16_t>(*details, "Port", 0)));
                j.field("deadline_us", prop<std::uint64_t>(*details, "Deadline", 0));
            }
            if (!text.empty()) j.field("text", text);
            j.w.EndObject();
            j.print();
            return;
        }
        std::cout << "[agent] " << text << std::endl;
    }

private:
    void AuthorizePeer(sdbus::Result<bool>&& result, sdbus::ObjectPath peer,
                       std::map<std::string, sdbus::Variant> details) override {
        Question q{peer, prop<std::string>(details, "SKI", ""), std::move(details), std::move(result)};
        if (q.ski.empty() && peer.rfind(std::string(peer_prefix), 0) == 0)
            q.ski = peer.substr(peer_prefix.size());
        const auto& d = q.details;
        std::ostringstream text;
        text << "Pairing request from SKI " << q.ski;
        const std::string ship_id = prop<std::string>(d, "ShipID", "");
        if (!ship_id.empty()) text << " (SHIP ID " << ship_id << ")";
        text << "\n[agent]   address "
             << address(prop<std::string>(d, "Host", ""), prop<std::uint16_t>(d, "Port", 0));
        const std::string what = prop<std::string>(d, "Brand", "") + " " + prop<std::string>(d, "Model", "") +
                                 " " + prop<std::string>(d, "Type", "");
        if (what.find_first_not_of(' ') != std::string::npos) text << ", " << what;
        text << ", expires in " << seconds_left(prop<std::uint64_t>(d, "Deadline", 0));
        say("request", q.ski, text.str(), &q.details);
        questions.push_back(std::move(q));
        if (questions.size() == 1) prompt_due = true;
    }

    void Cancel(const sdbus::ObjectPath& peer, const std::string& reason) override {
        for (auto it = questions.begin(); it != questions.end(); ++it) {
            if (it->peer_path != peer) continue;
            say("cancel", it->ski, "Request from SKI " + it->ski + " cancelled: " + reason);
            const bool first = it == questions.begin();
            questions.erase(it); // the call is already answered for shipd: it stopped waiting
            if (first) prompt_due = true;
            return;
        }
    }

    void Release() override {
        say("release", "", "Released by shipd (it is stopping)");
        released = true;
    }

    bool json_;
};

int cmd_agent(HubClient& c, const Invocation& inv) {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    const int sfd = signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) throw CliError(exit_failure, "cannot watch for Ctrl-C (signalfd failed)");

    Agent agent(c.connection(), inv.json);
    c.guarded([&] { c.hub().RegisterAgent(sdbus::ObjectPath(agent_path)); });
    std::cerr << "shipctl: pairing agent registered on " << bus_label(inv)
              << "; answer y or n to each request; Ctrl-C stops" << std::endl;

    bool stop = false, input_open = true;
    std::string line_buffer;
    auto prompt = [&] {
        agent.prompt_due = false;
        if (agent.questions.empty() || inv.json) return;
        std::cout << "[agent] Trust SKI " << agent.questions.front().ski << "? (yes/no): " << std::flush;
    };
    while (!stop && !agent.released) {
        c.pump_until([&] { return true; }, Clock::now()); // handle what arrived
        if (agent.prompt_due) prompt();
        if (agent.released) break;
        pollfd fds[3] = {{-1, 0, 0}, {sfd, POLLIN, 0}, {input_open ? STDIN_FILENO : -1, POLLIN, 0}};
        const auto data = c.connection().getEventLoopPollData();
        fds[0] = {data.fd, data.events, 0};
        int timeout = data.getPollTimeout();
        if (timeout < 0 || timeout > 1000) timeout = 1000;
        if (poll(fds, 3, timeout) < 0 && errno != EINTR) break;
        if (fds[1].revents & POLLIN) stop = true;
        if (input_open && (fds[2].revents & (POLLIN | POLLHUP))) {
            char buffer[256];
            const ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
            if (n <= 0) {
                input_open = false; // no more answers; requests go on to their deadline
                continue;
            }
            line_buffer.append(buffer, static_cast<std::size_t>(n));
            for (auto nl = line_buffer.find('\n'); nl != std::string::npos; nl = line_buffer.find('\n')) {
                std::string answer = line_buffer.substr(0, nl);
                line_buffer.erase(0, nl + 1);
                while (!answer.empty() && std::isspace(static_cast<unsigned char>(answer.back())))
                    answer.pop_back();
                if (agent.questions.empty()) continue;
                const bool yes = answer == "y" || answer == "yes";
                const bool no = answer == "n" || answer == "no";
                if (!yes && !no) {
                    std::cout << "[agent] Answer yes or no: " << std::flush;
                    continue;
                }
                auto q = std::move(agent.questions.front());
                agent.questions.pop_front();
                q.reply.returnResults(yes);
                agent.say(yes ? "approved" : "denied", q.ski, (yes ? "Trusted SKI " : "Denied SKI ") + q.ski);
                prompt();
            }
        }
    }
    close(sfd);
    if (!agent.released) {
        try {
            c.hub().UnregisterAgent(sdbus::ObjectPath(agent_path));
        } catch (const sdbus::Error&) {
            // shipd gone already: nothing to undo
        }
    }
    return exit_ok;
}

// ------------------------------------------------------------------------------------------------ others

int cmd_pending(HubClient& c, const Invocation& inv) {
    auto details = c.peer_details();
    struct Row {
        std::string ski;
        std::map<std::string, sdbus::Variant> props;
    };
    std::vector<Row> rows;
    for (auto& [ski, props] : details)
        if (prop<std::uint64_t>(props, "PairingDeadline", 0) != 0) rows.push_back({ski, props});
    if (inv.json) {
        JsonOut j;
        j.w.StartArray();
        for (const auto& r : rows) {
            j.w.StartObject();
            j.field("ski", r.ski);
            j.field("ship_id", prop<std::string>(r.props, "ShipID", ""));
            j.field("host", prop<std::string>(r.props, "Host", ""));
            j.field("port", static_cast<std::uint64_t>(prop<std::uint16_t>(r.props, "Port", 0)));
            j.field("brand", prop<std::string>(r.props, "Brand", ""));
            j.field("model", prop<std::string>(r.props, "Model", ""));
            j.field("type", prop<std::string>(r.props, "Type", ""));
            j.field("deadline_us", prop<std::uint64_t>(r.props, "PairingDeadline", 0));
            j.w.EndObject();
        }
        j.w.EndArray();
        j.print();
        return exit_ok;
    }
    if (rows.empty()) {
        std::cout << "no pairing requests waiting\n";
        return exit_ok;
    }
    Table t({"SKI", "SHIP ID", "ADDRESS", "DEVICE", "EXPIRES IN"});
    for (const auto& r : rows) {
        std::string device =
            prop<std::string>(r.props, "Brand", "") + " " + prop<std::string>(r.props, "Model", "");
        if (device == " ") device = "-";
        const std::string ship_id = prop<std::string>(r.props, "ShipID", "");
        t.add({r.ski, ship_id.empty() ? "-" : ship_id,
               address(prop<std::string>(r.props, "Host", ""), prop<std::uint16_t>(r.props, "Port", 0)),
               device, Cell(seconds_left(prop<std::uint64_t>(r.props, "PairingDeadline", 0)), Tone::warn)});
    }
    t.print(std::cout, want_colour());
    std::cout << "answer with `shipctl trust SKI` or `shipctl cancel SKI`, or run `shipctl agent`\n";
    return exit_ok;
}

int cmd_block(HubClient& c, const Invocation& inv, bool block) {
    const auto ski = resolve_peer(c, inv.args[0]);
    c.guarded([&] { block ? c.hub().Block(ski) : c.hub().Unblock(ski); }, ski);
    if (inv.json) {
        JsonOut j;
        j.w.StartObject();
        j.field("command", inv.command);
        j.field("ski", ski);
        j.field("ok", true);
        j.w.EndObject();
        j.print();
    } else {
        std::cout << (block ? "blocked " + ski + " (refused inside TLS from now on; its connection is closed)"
                            : "unblocked " + ski)
                  << '\n';
    }
    return exit_ok;
}

std::string value_text(const sdbus::Variant& v) {
    const std::string type = v.peekValueType();
    try {
        if (type == "s") return v.get<std::string>();
        if (type == "b") return v.get<bool>() ? "yes" : "no";
        if (type == "q") return std::to_string(v.get<std::uint16_t>());
        if (type == "t") return std::to_string(v.get<std::uint64_t>());
        if (type == "u") return std::to_string(v.get<std::uint32_t>());
    } catch (const sdbus::Error&) {
    }
    return "(" + type + ")";
}

int cmd_info(HubClient& c, const Invocation& inv) {
    const auto ski = resolve_peer(c, inv.args[0]);
    auto details = c.peer_details();
    const auto it = details.find(ski);
    if (it == details.end())
        throw CliError(exit_failure, "shipd knows no peer " + ski + ": see `shipctl peers`");
    const auto& props = it->second;
    if (inv.json) {
        JsonOut j;
        j.w.StartObject();
        for (const auto& [name, value] : props) {
            const std::string type = value.peekValueType();
            if (type == "b")
                j.field(name, value.get<bool>());
            else if (type == "q")
                j.field(name, static_cast<std::uint64_t>(value.get<std::uint16_t>()));
            else if (type == "t")
                j.field(name, value.get<std::uint64_t>());
            else
                j.field(name, value_text(value));
        }
        j.w.EndObject();
        j.print();
        return exit_ok;
    }
    std::cout << "Peer " << ski << '\n';
    for (const auto& [name, value] : props) {
        std::string text = value_text(value);
        if ((name == "PairingDeadline" || name == "ConnectedSince" || name == "LastErrorTime") &&
            text != "0") {
            const std::time_t t = static_cast<std::time_t>(value.get<std::uint64_t>() / 1'000'000);
            std::tm tm{};
            localtime_r(&t, &tm);
            char when[32];
            std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
            text += std::string(" (") + when + ")";
        }
        std::cout << '\t' << name << ": " << text << '\n';
    }
    return exit_ok;
}

} // namespace

int run_pairing_command(HubClient& client, const Invocation& inv) {
    if (inv.command == "pending") return cmd_pending(client, inv);
    if (inv.command == "agent") return cmd_agent(client, inv);
    if (inv.command == "block") return cmd_block(client, inv, true);
    if (inv.command == "unblock") return cmd_block(client, inv, false);
    if (inv.command == "info") return cmd_info(client, inv);
    throw CliError(exit_usage, "unknown command '" + inv.command + "'");
}

bool is_pairing_command(std::string_view command) {
    return command == "pending" || command == "agent" || command == "block" || command == "unblock" ||
           command == "info";
}

} // namespace ship::ctl
