// Fuzz target: shipd's JSON config text (ship::daemon::apply_config_text, daemon/options.hpp).
// Promises checked: only UsageError escapes and it names the file; an accepted config obeys every documented
// limit, keeps string values exactly as written, and the Options it gives read back the same when written
// out as a config again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "fuzz_support.hpp"
#include "options.hpp"

namespace {

namespace daemon = ship::daemon;
using ship::fuzz::printable;

constexpr std::string_view origin = "fuzz.conf";

// Findings once tolerated here (tests/fuzz/README.md), fixed in daemon/options.cpp; the seeds
// corpus/config/nul-in-string and corpus/config/bom and the inputs in regressions/config guard the fixes.
// F-CONFIG-NUL: some string values were read as C strings, so "a\u0000b" acted as "a" (now refused).
constexpr bool tolerate_cut_at_nul = false;
// F-CONFIG-BOM: the DOM parse skipped leading UTF-8 BOM bytes but the key scan did not, failed, and then no
// key of the file was applied at all (now a whole BOM is skipped by both, stray BOM bytes are refused).
constexpr bool tolerate_bom_ignored = false;

std::string_view bus_name(daemon::BusKind bus) {
    return bus == daemon::BusKind::session ? "session" : "system";
}

std::string_view log_level_name(spdlog::level::level_enum level) {
    switch (level) {
    case spdlog::level::trace:
        return "trace";
    case spdlog::level::debug:
        return "debug";
    case spdlog::level::info:
        return "info";
    case spdlog::level::warn:
        return "warn";
    case spdlog::level::err:
        return "error";
    default:
        return "?";
    }
}

// The Options as the config text that should produce them from the defaults.
std::string to_config(const daemon::Options& o) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    const auto string = [&w](const char* key, std::string_view value) {
        w.Key(key);
        w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
    };
    w.StartObject();
    string("state_dir", o.state_dir.native());
    w.Key("port");
    w.Uint(o.port);
    w.Key("listen_address");
    w.StartArray();
    for (const auto& a : o.listen_addresses)
        w.String(a.data(), static_cast<rapidjson::SizeType>(a.size()));
    w.EndArray();
    if (o.bus == daemon::BusKind::address)
        string("bus_address", o.bus_address);
    else
        string("bus", bus_name(o.bus));
    w.Key("mdns");
    w.Bool(o.mdns);
    string("log_level", log_level_name(o.log_level));
    string("ship_id", o.ship_id);
    string("brand", o.brand);
    string("model", o.model);
    string("type", o.type);
    string("serial", o.serial);
    w.Key("categories");
    w.StartArray();
    for (int c : o.categories)
        w.Int(c);
    w.EndArray();
    string("organization", o.organization);
    string("country", o.country);
    w.Key("auto_accept");
    w.Bool(o.auto_accept);
    w.Key("wait_for_trust");
    w.Bool(o.wait_for_trust);
    w.Key("max_connections");
    w.Uint(o.max_connections);
    w.Key("max_handshakes");
    w.Uint(o.max_handshakes);
    string("double_connection_rule", daemon::to_string(o.double_connection_rule));
    string("tls_max_version", daemon::to_string(o.tls_max_version));
    w.EndObject();
    return std::string(buffer.GetString(), buffer.GetSize());
}

bool is_identity_text(const std::string& text, std::size_t max_bytes) {
    if (text.size() > max_bytes) return false;
    for (char c : text)
        if (c == '=' || c == ';' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
    return true;
}

void check_limits(const daemon::Options& o) {
    FUZZ_REQUIRE(!o.categories.empty(), "empty categories accepted");
    for (int c : o.categories)
        FUZZ_REQUIRE(c >= 1 && c <= 255, "category " + std::to_string(c) + " accepted");
    FUZZ_REQUIRE(is_identity_text(o.ship_id, 63), "ship_id " + printable(o.ship_id));
    for (const auto* text : {&o.brand, &o.model, &o.type, &o.serial})
        FUZZ_REQUIRE(is_identity_text(*text, 32), "identity text " + printable(*text));
    FUZZ_REQUIRE(o.country.empty() || o.country.size() == 2, "country " + printable(o.country));
    FUZZ_REQUIRE(o.max_connections >= 1 && o.max_connections <= daemon::max_connection_limit,
                 "max_connections");
    FUZZ_REQUIRE(o.max_handshakes >= 1 && o.max_handshakes <= daemon::max_connection_limit, "max_handshakes");
    FUZZ_REQUIRE((o.bus == daemon::BusKind::address) == !o.bus_address.empty(),
                 "bus and bus_address disagree");
    FUZZ_REQUIRE(!o.state_dir.empty(), "empty state_dir accepted");
}

// The config as the daemon's DOM parse sees it (same flags), or nullopt-like: not an object.
bool parse_like_the_daemon(std::string_view text, rapidjson::Document& doc) {
    const std::string buffer(text);
    doc.Parse<rapidjson::kParseCommentsFlag>(buffer.c_str(), buffer.size());
    return !doc.HasParseError() && doc.IsObject();
}

// F-CONFIG-NUL: a top-level string value holding U+0000.
bool has_nul_in_a_value(const rapidjson::Value& root) {
    for (const auto& m : root.GetObject())
        if (m.value.IsString() &&
            std::string_view(m.value.GetString(), m.value.GetStringLength()).find('\0') !=
                std::string_view::npos)
            return true;
    return false;
}

// F-CONFIG-BOM: leading bytes the DOM parse skips as a UTF-8 BOM.
bool starts_with_bom_byte(std::string_view text) {
    const auto first = text.empty() ? 0U : static_cast<unsigned char>(text[0]) + 0U;
    return first == 0xEF || first == 0xBB || first == 0xBF;
}

// What the file says is what the daemon uses: a string value is taken whole or refused, never cut short.
void check_values_kept(const rapidjson::Value& root, const daemon::Options& o) {
    const auto kept = [&root](const char* key, std::string_view used) {
        if (!root.HasMember(key) || !root[key].IsString()) return;
        const std::string_view written(root[key].GetString(), root[key].GetStringLength());
        FUZZ_REQUIRE(written == used, std::string("\"") + key + "\": the file says \"" + printable(written) +
                                          "\", the daemon uses \"" + printable(used) + "\"");
    };
    kept("state_dir", o.state_dir.native());
    if (root.HasMember("listen_address") && root["listen_address"].IsString() &&
        root["listen_address"].GetStringLength() > 0) {
        FUZZ_REQUIRE(o.listen_addresses.size() == 1, "\"listen_address\": one address in, not one used");
        kept("listen_address", o.listen_addresses.front());
    }
    kept("bus_address", o.bus_address);
    if (o.bus != daemon::BusKind::address) kept("bus", bus_name(o.bus));
    kept("log_level", log_level_name(o.log_level));
    for (const auto& [key, value] :
         {std::pair{"ship_id", &o.ship_id}, std::pair{"brand", &o.brand}, std::pair{"model", &o.model},
          std::pair{"type", &o.type}, std::pair{"serial", &o.serial},
          std::pair{"organization", &o.organization}, std::pair{"country", &o.country}})
        kept(key, *value);
    kept("double_connection_rule", daemon::to_string(o.double_connection_rule));
    kept("tls_max_version", daemon::to_string(o.tls_max_version));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    daemon::Options options;
    try {
        options = daemon::apply_config_text(daemon::Options{}, text, origin);
    } catch (const daemon::UsageError& e) {
        const std::string what = e.what();
        FUZZ_REQUIRE(what.rfind(origin, 0) == 0, "error does not name the file: " + printable(what));
        return 0;
    }
    rapidjson::Document doc;
    if (!parse_like_the_daemon(text, doc)) {
        // Accepted although the DOM parse refuses it: impossible unless the daemon parses differently.
        ship::fuzz::invariant_broken(__FILE__, __LINE__, "accepted text parses", printable(text));
    }
    if (tolerate_cut_at_nul && has_nul_in_a_value(doc)) return 0;
    check_limits(options);
    if (!(tolerate_bom_ignored && starts_with_bom_byte(text))) check_values_kept(doc, options);

    const std::string written = to_config(options);
    daemon::Options again;
    try {
        again = daemon::apply_config_text(daemon::Options{}, written, origin);
    } catch (const daemon::UsageError& e) {
        ship::fuzz::invariant_broken(__FILE__, __LINE__, "the accepted options written out are accepted",
                                     printable(written) + ": " + e.what());
    }
    FUZZ_REQUIRE(to_config(again) == written, "options changed by a write/read cycle: " + printable(written));
    return 0;
}
