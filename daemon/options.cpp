#include "options.hpp"

#include <arpa/inet.h>
#include <getopt.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

namespace ship::daemon {
namespace {

// Comments are allowed so the example config can explain itself; trailing commas are not (typos should fail).
// Iterative: the recursive parser overflows the stack on a deeply nested file (exit 139 instead of 2).
constexpr unsigned config_parse_flags = rapidjson::kParseCommentsFlag | rapidjson::kParseIterativeFlag;

// Settings sit at depth 1 and "categories" at 2; anything far deeper is a mistake, not a config.
constexpr int max_config_depth = 32;

// Editors on some systems start a UTF-8 file with a byte order mark; it carries no meaning in JSON.
constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

std::string in_quotes(std::string_view text) {
    return "'" + std::string(text) + "'";
}

std::optional<unsigned long> parse_unsigned(std::string_view text) {
    unsigned long value = 0;
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
    return value;
}

// Every refusal below returns the reason without saying where; the callers prefix the flag or file:line.
std::optional<std::string> check_port(std::string_view text, std::uint16_t& out) {
    const auto value = parse_unsigned(text);
    if (!value || *value > 65535)
        return in_quotes(text) + " is not a TCP port (0-65535; 0 picks a free port)";
    out = static_cast<std::uint16_t>(*value);
    return std::nullopt;
}

std::optional<std::string> check_log_level(std::string_view text, spdlog::level::level_enum& out) {
    static constexpr std::pair<std::string_view, spdlog::level::level_enum> levels[] = {
        {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug}, {"info", spdlog::level::info},
        {"warn", spdlog::level::warn},   {"error", spdlog::level::err},
    };
    for (const auto& [name, level] : levels) {
        if (text == name) {
            out = level;
            return std::nullopt;
        }
    }
    return in_quotes(text) + " is not a log level (trace, debug, info, warn, error)";
}

// SHIP ID and the mDNS/QR identity strings: '=' and ';' separate TXT and QR fields, control characters
// break both. mDNS cuts brand/model/type/serial to 32 bytes itself; the SHIP ID must fit a TXT value (63).
std::optional<std::string> check_identity_text(std::string_view text, std::size_t max_bytes) {
    if (text.size() > max_bytes)
        return in_quotes(text) + " is longer than " + std::to_string(max_bytes) + " bytes";
    for (const char c : text) {
        if (c == '=' || c == ';' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            return in_quotes(text) + " must not contain '=', ';' or control characters";
    }
    return std::nullopt;
}

std::optional<std::string> check_not_empty(std::string_view text) {
    if (text.empty()) return std::string("must not be empty");
    return std::nullopt;
}

// Syntax only: whether the address exists on this host is checked at start (net/listen_address.hpp), so the
// parser stays free of system state (fuzz target).
std::optional<std::string> check_listen_address(std::string_view text) {
    if (text.empty()) return std::string("must not be empty (leave the setting out for every address)");
    const std::string copy(text);
    unsigned char buf[sizeof(in6_addr)];
    const std::string bare = copy.substr(0, copy.find('%'));
    if (inet_pton(AF_INET, copy.c_str(), buf) == 1) return std::nullopt;
    if (inet_pton(AF_INET6, bare.c_str(), buf) == 1) {
        const auto percent = copy.find('%');
        if (percent == std::string::npos || (percent + 1 < copy.size() && copy.size() - percent - 1 < 16))
            return std::nullopt;
        return in_quotes(text) + " has a bad zone (expected an interface name after '%')";
    }
    // An interface name as the kernel takes them: 1-15 bytes, no '/', ':', '%' or white space.
    const bool name =
        copy.size() < 16 && copy != "." && copy != ".." && std::none_of(copy.begin(), copy.end(), [](char c) {
            return c == '/' || c == ':' || c == '%' || static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
        });
    if (name) return std::nullopt;
    return in_quotes(text) + " is neither an IPv4/IPv6 address nor an interface name";
}

// "a,b" or "a, b": the flag takes a list as well as being repeated.
std::vector<std::string> split_list(std::string_view text) {
    std::vector<std::string> out;
    while (true) {
        const auto comma = text.find(',');
        auto item = text.substr(0, comma);
        while (!item.empty() && item.front() == ' ')
            item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ')
            item.remove_suffix(1);
        out.emplace_back(item);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return out;
}

std::optional<std::string> check_country(std::string_view text) {
    const bool letters = std::all_of(text.begin(), text.end(),
                                     [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); });
    if (text.empty() || (text.size() == 2 && letters)) return std::nullopt;
    return in_quotes(text) + " is not a two-letter country code";
}

// ---------------------------------------------------------------------------------------------------------
// Command line

struct CommandLine {
    Action action = Action::run;
    std::optional<std::filesystem::path> config_file, state_dir;
    std::optional<std::uint16_t> port;
    std::optional<std::vector<std::string>> listen_addresses;
    std::optional<BusKind> bus;
    std::string bus_flag; // the flag that chose `bus`, for conflict messages
    std::string bus_address;
    bool no_mdns = false;
    std::optional<std::string> ship_id;
    bool auto_accept = false;
    std::optional<spdlog::level::level_enum> log_level;
};

enum LongOnly : int {
    opt_config = 1000,
    opt_state_dir,
    opt_port,
    opt_listen_address,
    opt_bus_address,
    opt_system,
    opt_session,
    opt_no_mdns,
    opt_ship_id,
    opt_auto_accept,
    opt_log_level,
    opt_print_ski,
    opt_print_qr,
    opt_version,
    opt_help,
};

constexpr option long_options[] = {
    {"config", required_argument, nullptr, opt_config},
    {"state-dir", required_argument, nullptr, opt_state_dir},
    {"port", required_argument, nullptr, opt_port},
    {"listen-address", required_argument, nullptr, opt_listen_address},
    {"bus-address", required_argument, nullptr, opt_bus_address},
    {"system", no_argument, nullptr, opt_system},
    {"session", no_argument, nullptr, opt_session},
    {"no-mdns", no_argument, nullptr, opt_no_mdns},
    {"ship-id", required_argument, nullptr, opt_ship_id},
    {"auto-accept", no_argument, nullptr, opt_auto_accept},
    {"log-level", required_argument, nullptr, opt_log_level},
    {"print-ski", no_argument, nullptr, opt_print_ski},
    {"print-qr", no_argument, nullptr, opt_print_qr},
    {"version", no_argument, nullptr, opt_version},
    {"help", no_argument, nullptr, opt_help},
    {nullptr, 0, nullptr, 0},
};

std::string flag_name(int code) {
    for (const auto& o : long_options) {
        if (o.name != nullptr && o.val == code) return std::string("--") + o.name;
    }
    return code > 0 && code < 256 ? std::string("-") + static_cast<char>(code) : std::string("?");
}

void fail_flag(const std::string& flag, const std::string& why) {
    throw UsageError(flag + ": " + why);
}

void choose_bus(CommandLine& cl, BusKind kind, const std::string& flag, std::string address = {}) {
    if (cl.bus && (*cl.bus != kind || cl.bus_address != address))
        fail_flag(flag,
                  "conflicts with " + cl.bus_flag + " (choose one of --system, --session, --bus-address)");
    cl.bus = kind;
    cl.bus_flag = flag;
    cl.bus_address = std::move(address);
}

CommandLine parse_command_line(std::span<char* const> args) {
    CommandLine cl;
    if (args.empty()) return cl;
    // getopt keeps its position in globals: optind = 0 makes glibc start over (tests parse many times).
    optind = 0;
    opterr = 0;
    const int argc = static_cast<int>(args.size());
    // '+': stop at the first operand instead of permuting argv; ':': report a missing value as ':'.
    for (;;) {
        const int code = getopt_long(argc, args.data(), "+:h", long_options, nullptr);
        if (code == -1) break;
        const std::string value = optarg != nullptr ? optarg : "";
        switch (code) {
        case opt_config:
            if (auto bad = check_not_empty(value)) fail_flag("--config", *bad);
            cl.config_file = value;
            break;
        case opt_state_dir:
            if (auto bad = check_not_empty(value)) fail_flag("--state-dir", *bad);
            cl.state_dir = value;
            break;
        case opt_port: {
            std::uint16_t port = 0;
            if (auto bad = check_port(value, port)) fail_flag("--port", *bad);
            cl.port = port;
            break;
        }
        case opt_listen_address:
            if (!cl.listen_addresses) cl.listen_addresses.emplace();
            for (auto& item : split_list(value)) {
                if (auto bad = check_listen_address(item)) fail_flag("--listen-address", *bad);
                cl.listen_addresses->push_back(std::move(item));
            }
            break;
        case opt_bus_address:
            if (auto bad = check_not_empty(value)) fail_flag("--bus-address", *bad);
            choose_bus(cl, BusKind::address, "--bus-address", value);
            break;
        case opt_system:
            choose_bus(cl, BusKind::system, "--system");
            break;
        case opt_session:
            choose_bus(cl, BusKind::session, "--session");
            break;
        case opt_no_mdns:
            cl.no_mdns = true;
            break;
        case opt_ship_id:
            if (auto bad = check_not_empty(value)) fail_flag("--ship-id", *bad);
            if (auto bad = check_identity_text(value, 63)) fail_flag("--ship-id", *bad);
            cl.ship_id = value;
            break;
        case opt_auto_accept:
            cl.auto_accept = true;
            break;
        case opt_log_level: {
            auto level = spdlog::level::info;
            if (auto bad = check_log_level(value, level)) fail_flag("--log-level", *bad);
            cl.log_level = level;
            break;
        }
        case opt_print_ski:
            cl.action = Action::print_ski;
            break;
        case opt_print_qr:
            cl.action = Action::print_qr;
            break;
        case opt_version:
            cl.action = Action::version;
            break;
        case 'h':
        case opt_help:
            cl.action = Action::help;
            break;
        case ':':
            fail_flag(flag_name(optopt), "needs a value");
            break;
        default: // '?': unknown option, or a value given to a flag that takes none
            if (optopt >= opt_config) fail_flag(flag_name(optopt), "takes no value");
            if (optopt != 0)
                throw UsageError("unknown option " + in_quotes(std::string("-") + static_cast<char>(optopt)) +
                                 " (try --help)");
            throw UsageError("unknown option " + in_quotes(args[static_cast<std::size_t>(optind - 1)]) +
                             " (try --help)");
        }
    }
    if (optind < argc)
        throw UsageError("unexpected argument " + in_quotes(args[static_cast<std::size_t>(optind)]) +
                         " (try --help)");
    return cl;
}

// ---------------------------------------------------------------------------------------------------------
// Config file

struct Position {
    std::size_t line = 1, column = 1;
};

Position position_of(std::string_view text, std::size_t offset) {
    Position pos;
    offset = std::min(offset, text.size());
    for (std::size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n') {
            ++pos.line;
            pos.column = 1;
        } else {
            ++pos.column;
        }
    }
    return pos;
}

// RapidJSON's DOM forgets where a member was; this SAX pass remembers where each top-level key starts so
// a bad value is reported at its line. It also refuses what the DOM would take silently: duplicate keys, and
// strings holding U+0000 (every consumer of a setting reads it as a C string and would cut it there); and
// it bounds the nesting before the DOM is built.
class KeyScanner : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, KeyScanner> {
public:
    KeyScanner(std::string_view text, const rapidjson::StringStream& stream)
        : text_(text)
        , stream_(stream) {}

    bool StartObject() { return enter(); }
    bool EndObject(rapidjson::SizeType) { return --depth_, true; }
    bool StartArray() { return enter(); }
    bool EndArray(rapidjson::SizeType) { return --depth_, true; }
    bool String(const char* str, rapidjson::SizeType length, bool) {
        return no_nul(std::string_view(str, length), "a string value of");
    }
    bool Key(const char* str, rapidjson::SizeType length, bool) {
        const std::string_view key(str, length);
        if (depth_ != 1) return no_nul(key, "a key inside");
        const std::size_t start = string_start();
        if (key.find('\0') != std::string_view::npos)
            return refuse(start, "a key contains \\u0000 (NUL); keys and values must not");
        current_ = key;
        if (!keys_.emplace(current_, start).second)
            return refuse(start, "key \"" + current_ + "\" appears twice");
        return true;
    }

    const std::map<std::string, std::size_t>& keys() const { return keys_; }
    // Set when the scan stopped on one of the refusals above (offset, message).
    const std::optional<std::pair<std::size_t, std::string>>& refusal() const { return refusal_; }

private:
    bool enter() {
        if (++depth_ <= max_config_depth) return true;
        return refuse(stream_.Tell(), "nested deeper than " + std::to_string(max_config_depth) + " levels");
    }
    bool no_nul(std::string_view text, std::string_view what) {
        if (text.find('\0') == std::string_view::npos) return true;
        return refuse(string_start(), std::string(what) + " \"" + current_ +
                                          "\" contains \\u0000 (NUL), which would cut the value short");
    }
    bool refuse(std::size_t offset, std::string why) {
        refusal_.emplace(offset, std::move(why));
        return false;
    }
    // RapidJSON reads a string through a local copy of the stream, so during a string callback Tell() is
    // still at the opening quote. Walk back past the string if a future version moves it on.
    std::size_t string_start() const {
        std::size_t start = std::min<std::size_t>(stream_.Tell(), text_.size() - 1);
        if (text_[start] != '"' && start >= 2) {
            start -= 2;
            while (start > 0 && !(text_[start] == '"' && text_[start - 1] != '\\'))
                --start;
        }
        return start;
    }

    std::string_view text_;
    const rapidjson::StringStream& stream_;
    int depth_ = 0;
    std::string current_; // the top-level key whose value is being read
    std::map<std::string, std::size_t> keys_;
    std::optional<std::pair<std::size_t, std::string>> refusal_;
};

using Setter = std::function<std::optional<std::string>(const rapidjson::Value&, Options&)>;

std::string json_text(const rapidjson::Value& v) {
    if (v.IsString()) return "\"" + std::string(v.GetString(), v.GetStringLength()) + "\"";
    if (v.IsBool()) return v.GetBool() ? "true" : "false";
    if (v.IsNull()) return "null";
    if (v.IsInt64()) return std::to_string(v.GetInt64());
    if (v.IsUint64()) return std::to_string(v.GetUint64());
    if (v.IsNumber()) return std::to_string(v.GetDouble());
    return v.IsArray() ? "an array" : "an object";
}

Setter string_setter(std::string Options::*field,
                     std::function<std::optional<std::string>(std::string_view)> check = {}) {
    return [field, check](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
        if (!v.IsString()) return "must be a string, not " + json_text(v);
        std::string text(v.GetString(), v.GetStringLength());
        if (check) {
            if (auto bad = check(text)) return bad;
        }
        o.*field = std::move(text);
        return std::nullopt;
    };
}

Setter bool_setter(bool Options::*field) {
    return [field](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
        if (!v.IsBool()) return "must be true or false, not " + json_text(v);
        o.*field = v.GetBool();
        return std::nullopt;
    };
}

Setter count_setter(unsigned Options::*field, unsigned max) {
    return [field, max](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
        if (!v.IsUint() || v.GetUint() < 1 || v.GetUint() > max)
            return "must be a whole number from 1 to " + std::to_string(max) + ", not " + json_text(v);
        o.*field = v.GetUint();
        return std::nullopt;
    };
}

Setter range_setter(unsigned Options::*field, unsigned min, unsigned max, std::string_view unit) {
    return [field, min, max, unit](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
        if (!v.IsUint() || v.GetUint() < min || v.GetUint() > max)
            return "must be a whole number of " + std::string(unit) + " from " + std::to_string(min) +
                   " to " + std::to_string(max) + ", not " + json_text(v);
        o.*field = v.GetUint();
        return std::nullopt;
    };
}

template <typename Enum, std::size_t N>
Setter choice_setter(Enum Options::*field, const std::pair<std::string_view, Enum> (&choices)[N]) {
    std::vector<std::pair<std::string_view, Enum>> table(std::begin(choices), std::end(choices));
    return [field, table](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
        std::string names;
        for (const auto& [name, value] : table) {
            if (v.IsString() && v.GetString() == name) {
                o.*field = value;
                return std::nullopt;
            }
            names += (names.empty() ? "\"" : ", \"") + std::string(name) + "\"";
        }
        return "must be one of " + names + ", not " + json_text(v);
    };
}

constexpr std::pair<std::string_view, DoubleConnectionRule> rule_names[] = {
    {"spec", DoubleConnectionRule::spec}, {"legacy", DoubleConnectionRule::legacy}};
constexpr std::pair<std::string_view, TlsVersion> tls_names[] = {{"1.2", TlsVersion::tls1_2},
                                                                 {"1.3", TlsVersion::tls1_3}};

const std::map<std::string, Setter, std::less<>>& config_keys() {
    static const std::map<std::string, Setter, std::less<>> keys = {
        {"state_dir",
         [](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
             if (!v.IsString() || v.GetStringLength() == 0)
                 return "must be a non-empty string, not " + json_text(v);
             o.state_dir = v.GetString();
             return std::nullopt;
         }},
        {"port",
         [](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
             if (!v.IsUint() || v.GetUint() > 65535)
                 return "must be a TCP port number 0-65535 (0 picks a free port), not " + json_text(v);
             o.port = static_cast<std::uint16_t>(v.GetUint());
             return std::nullopt;
         }},
        {"listen_address",
         [](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
             // One address or interface, or a list of them; "" or [] = every address.
             const std::string what = "must be an address or interface name, or an array of them, not ";
             std::vector<std::string> list;
             if (v.IsString()) {
                 if (v.GetStringLength() == 0) {
                     o.listen_addresses.clear();
                     return std::nullopt;
                 }
                 list.emplace_back(v.GetString(), v.GetStringLength());
             } else if (v.IsArray()) {
                 for (const auto& item : v.GetArray()) {
                     if (!item.IsString()) return what + "an array containing " + json_text(item);
                     list.emplace_back(item.GetString(), item.GetStringLength());
                 }
             } else {
                 return what + json_text(v);
             }
             for (const auto& item : list)
                 if (auto bad = check_listen_address(item)) return bad;
             o.listen_addresses = std::move(list);
             return std::nullopt;
         }},
        {"bus",
         [](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
             if (v.IsString() && v.GetString() == std::string_view("system")) {
                 o.bus = BusKind::system;
             } else if (v.IsString() && v.GetString() == std::string_view("session")) {
                 o.bus = BusKind::session;
             } else {
                 return "must be \"system\" or \"session\" (use \"bus_address\" for another bus), not " +
                        json_text(v);
             }
             o.bus_address.clear();
             return std::nullopt;
         }},
        {"bus_address",
         [](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
             if (!v.IsString() || v.GetStringLength() == 0)
                 return "must be a D-Bus address such as \"unix:path=/run/shipd-bus\", not " + json_text(v);
             o.bus = BusKind::address;
             o.bus_address = v.GetString();
             return std::nullopt;
         }},
        {"mdns", bool_setter(&Options::mdns)},
        {"log_level",
         [](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
             if (!v.IsString()) return "must be a string, not " + json_text(v);
             return check_log_level(v.GetString(), o.log_level);
         }},
        {"ship_id",
         string_setter(&Options::ship_id, [](std::string_view t) { return check_identity_text(t, 63); })},
        {"brand",
         string_setter(&Options::brand, [](std::string_view t) { return check_identity_text(t, 32); })},
        {"model",
         string_setter(&Options::model, [](std::string_view t) { return check_identity_text(t, 32); })},
        {"type",
         string_setter(&Options::type, [](std::string_view t) { return check_identity_text(t, 32); })},
        {"serial",
         string_setter(&Options::serial, [](std::string_view t) { return check_identity_text(t, 32); })},
        {"categories",
         [](const rapidjson::Value& v, Options& o) -> std::optional<std::string> {
             const std::string what = "must be a non-empty array of category numbers 1-255 such as [2], not ";
             if (!v.IsArray() || v.Empty()) return what + json_text(v);
             std::vector<int> categories;
             for (const auto& item : v.GetArray()) {
                 if (!item.IsUint() || item.GetUint() < 1 || item.GetUint() > 255)
                     return what + "containing " + json_text(item);
                 categories.push_back(static_cast<int>(item.GetUint()));
             }
             o.categories = std::move(categories);
             return std::nullopt;
         }},
        {"organization", string_setter(&Options::organization)},
        {"country", string_setter(&Options::country, check_country)},
        {"auto_accept", bool_setter(&Options::auto_accept)},
        {"wait_for_trust", bool_setter(&Options::wait_for_trust)},
        {"max_connections", count_setter(&Options::max_connections, max_connection_limit)},
        {"max_handshakes", count_setter(&Options::max_handshakes, max_connection_limit)},
        {"double_connection_rule", choice_setter(&Options::double_connection_rule, rule_names)},
        {"tls_max_version", choice_setter(&Options::tls_max_version, tls_names)},
        {"pairing_timeout", range_setter(&Options::pairing_timeout, 1, 86400, "seconds")},
        {"pairing_quiet_period", range_setter(&Options::pairing_quiet_period, 0, 86400, "seconds")},
        {"max_pending", count_setter(&Options::max_pending, max_connection_limit)},
        {"max_pending_per_address", count_setter(&Options::max_pending_per_address, max_connection_limit)},
    };
    return keys;
}

std::string where(std::string_view origin, std::string_view text, std::size_t offset) {
    const auto pos = position_of(text, offset);
    return std::string(origin) + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column);
}

std::string known_keys() {
    std::string names;
    for (const auto& [name, setter] : config_keys())
        names += (names.empty() ? "" : ", ") + name;
    return names;
}

} // namespace

Options apply_config_text(Options base, std::string_view text, std::string_view origin) {
    // Both passes read the same bytes through the same stream type: RapidJSON's own BOM skipping (which
    // also drops a lone 0xEF, 0xBB or 0xBF) is for the DOM's Parse() only, and a scan that saw other bytes
    // than the DOM once made a file with a BOM apply none of its settings.
    if (text.substr(0, utf8_bom.size()) == utf8_bom) text.remove_prefix(utf8_bom.size());
    // rapidjson's StringStream stops at the first NUL; a NUL byte anywhere would hide what follows it.
    if (const auto nul = text.find('\0'); nul != std::string_view::npos)
        throw UsageError(where(origin, text, nul) + ": the config file contains a NUL byte");
    const std::string buffer(text);

    rapidjson::StringStream scan_stream(buffer.c_str());
    KeyScanner scanner(buffer, scan_stream);
    rapidjson::Reader reader;
    if (!reader.Parse<config_parse_flags>(scan_stream, scanner)) {
        if (const auto& refusal = scanner.refusal())
            throw UsageError(where(origin, buffer, refusal->first) + ": " + refusal->second);
        throw UsageError(where(origin, buffer, reader.GetErrorOffset()) + ": " +
                         rapidjson::GetParseError_En(reader.GetParseErrorCode()));
    }

    rapidjson::Document doc;
    rapidjson::StringStream dom_stream(buffer.c_str());
    doc.ParseStream<config_parse_flags>(dom_stream);
    if (doc.HasParseError()) {
        throw UsageError(where(origin, buffer, doc.GetErrorOffset()) + ": " +
                         rapidjson::GetParseError_En(doc.GetParseError()));
    }
    if (!doc.IsObject()) throw UsageError(std::string(origin) + ": the config must be a JSON object {...}");

    // Report in file order, so the first mistake a user sees is the first one in the file.
    std::vector<std::pair<std::size_t, std::string>> members;
    for (const auto& [key, offset] : scanner.keys())
        members.emplace_back(offset, key);
    std::sort(members.begin(), members.end());

    bool bus_seen = false, bus_address_seen = false;
    for (const auto& [offset, key] : members) {
        const auto it = config_keys().find(key);
        if (it == config_keys().end())
            throw UsageError(where(origin, buffer, offset) + ": unknown key \"" + key +
                             "\" (known keys: " + known_keys() + ")");
        bus_seen |= key == "bus";
        bus_address_seen |= key == "bus_address";
        if (bus_seen && bus_address_seen)
            throw UsageError(where(origin, buffer, offset) +
                             ": \"bus\" and \"bus_address\" exclude each other");
        const auto& value = doc.FindMember(key.c_str())->value;
        if (auto bad = it->second(value, base))
            throw UsageError(where(origin, buffer, offset) + ": \"" + key + "\" " + *bad);
        base.origins[key] = where(origin, buffer, offset) + ": \"" + key + "\"";
    }
    return base;
}

Options apply_config_file(Options base, const std::filesystem::path& path) {
    const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) throw UsageError(path.string() + ": cannot read the config file: " + std::strerror(errno));
    std::string text;
    char chunk[4096];
    std::size_t n = 0;
    while ((n = std::fread(chunk, 1, sizeof chunk, file.get())) > 0)
        text.append(chunk, n);
    if (std::ferror(file.get()))
        throw UsageError(path.string() + ": cannot read the config file: " + std::strerror(errno));
    return apply_config_text(std::move(base), text, path.string());
}

Options load_options(std::span<char* const> args) {
    const CommandLine cl = parse_command_line(args);
    Options options;
    options.action = cl.action;
    if (cl.action == Action::help || cl.action == Action::version) return options;

    if (cl.config_file) {
        options.config_file = *cl.config_file;
        std::error_code ec;
        if (!std::filesystem::exists(*cl.config_file, ec))
            fail_flag("--config", in_quotes(cl.config_file->string()) + " does not exist");
        options = apply_config_file(std::move(options), *cl.config_file);
    } else {
        std::error_code ec;
        // Only a missing default file is fine; one that exists but cannot be read is still an error.
        if (std::filesystem::exists(options.config_file, ec))
            options = apply_config_file(std::move(options), options.config_file);
    }

    // A flag that overrides a key the file set is said once at start: an admin editing the file should learn
    // why the edit does not take.
    const auto overridden = [&](const std::string& flag, std::initializer_list<std::string_view> keys) {
        for (const auto key : keys)
            if (auto it = options.origins.find(key); it != options.origins.end())
                options.overrides.push_back(flag + " overrides " + it->second + " (the command line wins)");
    };
    if (cl.state_dir) {
        overridden("--state-dir", {"state_dir"});
        options.state_dir = *cl.state_dir;
    }
    if (cl.port) {
        overridden("--port", {"port"});
        options.port = *cl.port;
    }
    if (cl.listen_addresses) {
        overridden("--listen-address", {"listen_address"});
        options.listen_addresses = *cl.listen_addresses;
        options.origins["listen_address"] = "--listen-address";
    }
    if (cl.bus) {
        overridden(cl.bus_flag, {"bus", "bus_address"});
        options.bus = *cl.bus;
        options.bus_address = cl.bus_address;
    }
    if (cl.no_mdns) {
        overridden("--no-mdns", {"mdns"});
        options.mdns = false;
    }
    if (cl.ship_id) {
        overridden("--ship-id", {"ship_id"});
        options.ship_id = *cl.ship_id;
        options.origins["ship_id"] = "--ship-id";
    }
    if (cl.auto_accept) {
        overridden("--auto-accept", {"auto_accept"});
        options.auto_accept = true;
    }
    if (cl.log_level) {
        overridden("--log-level", {"log_level"});
        options.log_level = *cl.log_level;
    }
    return options;
}

std::string usage_text(std::string_view program) {
    std::string text = "usage: " + std::string(program) +
                       " [--config FILE] [--state-dir DIR] [--port N] [--listen-address ADDR]\n"
                       "       [--bus-address ADDR | --system | --session] [--no-mdns] [--ship-id ID]\n"
                       "       [--auto-accept] [--log-level trace|debug|info|warn|error]\n"
                       "       [--print-ski] [--print-qr] [--version] [--help]\n\n";
    text += "  --config FILE       JSON config file (default " + std::string(default_config_file) +
            ", may be missing)\n";
    text += "  --state-dir DIR     certificate, key and trust store (default " +
            std::string(default_state_dir) + ")\n";
    text += "  --port N            SHIP listening port (default " + std::to_string(default_port) +
            "; 0 picks a free one)\n";
    text += "  --listen-address A  listen only on A: an IPv4/IPv6 address of this host or an interface\n"
            "                      name; repeat or give a comma list for several (default: every address)\n";
    text += "  --bus-address ADDR  serve D-Bus on this bus address instead of the system bus\n"
            "  --system            serve on the system bus (default)\n"
            "  --session           serve on the session bus\n"
            "  --no-mdns           neither announce nor browse _ship._tcp over mDNS\n"
            "  --ship-id ID        own SHIP ID (default: derived from brand, model and serial)\n"
            "  --auto-accept       accept untrusted peers without asking (mDNS register=true)\n"
            "  --log-level LEVEL   trace, debug, info (default), warn or error\n"
            "  --print-ski         create the certificate if missing, print the SKI (one line) and exit\n"
            "  --print-qr          create the certificate if missing, print the SHIP QR code text and exit\n"
            "  --version           print the version and exit\n"
            "  --help              print this text and exit\n\n"
            "Command-line flags override the config file. Exit codes: 0 clean stop, 1 runtime failure,\n"
            "2 usage or config error.\n";
    return text;
}

std::string_view to_string(DoubleConnectionRule rule) {
    return rule == DoubleConnectionRule::spec ? "spec" : "legacy";
}

std::string_view to_string(TlsVersion version) {
    return version == TlsVersion::tls1_2 ? "1.2" : "1.3";
}

} // namespace ship::daemon
