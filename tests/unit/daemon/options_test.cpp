// shipd's command line and config file: every flag, the defaults, file-then-flags precedence, and that each
// refusal names the flag or the file:line:column a user has to fix.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "options.hpp"

using namespace ship::daemon;
namespace fs = std::filesystem;

namespace {

// argv as main gets it; the strings live as long as the object.
struct Args {
    std::vector<std::string> storage;
    std::vector<char*> argv;
    Args(std::initializer_list<std::string> args) {
        storage.reserve(args.size() + 1);
        storage.emplace_back("shipd");
        for (const auto& a : args)
            storage.push_back(a);
        for (auto& s : storage)
            argv.push_back(s.data());
        argv.push_back(nullptr);
    }
    std::span<char* const> span() const { return {argv.data(), argv.size() - 1}; }
};

Options load(std::initializer_list<std::string> args) {
    // Never let the machine's /etc/shipd/shipd.conf leak into a test: always name a config file.
    return load_options(Args(args).span());
}

std::string usage_error(std::initializer_list<std::string> args) {
    try {
        load(args);
    } catch (const UsageError& e) {
        return e.what();
    }
    FAIL("no UsageError");
    return {};
}

std::string config_error(const std::string& text) {
    try {
        apply_config_text(Options{}, text, "test.conf");
    } catch (const UsageError& e) {
        return e.what();
    }
    FAIL("no UsageError for: " << text);
    return {};
}

struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "shipd-options-XXXXXX").string();
        path = mkdtemp(tmpl.data());
    }
    ~TempDir() { fs::remove_all(path); }
    fs::path write(const std::string& name, const std::string& text) const {
        std::ofstream(path / name) << text;
        return path / name;
    }
};

} // namespace

TEST_CASE("defaults match the design when nothing is given", "[daemon][options]") {
    TempDir dir;
    const auto empty = dir.write("empty.conf", "{}");
    const Options o = load({"--config", empty.string()});
    CHECK(o.action == Action::run);
    CHECK(o.state_dir == "/var/lib/shipd");
    CHECK(o.port == 4711);
    CHECK(o.bus == BusKind::system);
    CHECK(o.bus_address.empty());
    CHECK(o.mdns);
    CHECK(o.ship_id.empty());
    CHECK_FALSE(o.auto_accept);
    CHECK(o.wait_for_trust);
    CHECK(o.log_level == spdlog::level::info);
    CHECK(o.categories == std::vector<int>{2});
    CHECK(o.double_connection_rule == DoubleConnectionRule::spec);
    CHECK(o.tls_max_version == TlsVersion::tls1_3);
    CHECK(Options{}.config_file == "/etc/shipd/shipd.conf");
}

TEST_CASE("every command-line flag sets its option", "[daemon][options]") {
    TempDir dir;
    const auto empty = dir.write("empty.conf", "{}");
    const Options o = load({"--config", empty.string(), "--state-dir", "/tmp/s", "--port", "0", "--session",
                            "--no-mdns", "--ship-id", "Demo-EMS-1", "--auto-accept", "--log-level", "trace"});
    CHECK(o.config_file == empty);
    CHECK(o.state_dir == "/tmp/s");
    CHECK(o.port == 0);
    CHECK(o.bus == BusKind::session);
    CHECK_FALSE(o.mdns);
    CHECK(o.ship_id == "Demo-EMS-1");
    CHECK(o.auto_accept);
    CHECK(o.log_level == spdlog::level::trace);

    const Options b = load({"--config", empty.string(), "--bus-address=unix:path=/tmp/bus", "--port=65535"});
    CHECK(b.bus == BusKind::address);
    CHECK(b.bus_address == "unix:path=/tmp/bus");
    CHECK(b.port == 65535);

    CHECK(load({"--config", empty.string(), "--system"}).bus == BusKind::system);
    for (const auto& [name, level] :
         std::vector<std::pair<std::string, spdlog::level::level_enum>>{{"debug", spdlog::level::debug},
                                                                        {"info", spdlog::level::info},
                                                                        {"warn", spdlog::level::warn},
                                                                        {"error", spdlog::level::err}})
        CHECK(load({"--config", empty.string(), "--log-level", name}).log_level == level);
}

TEST_CASE("--print-ski, --version and --help choose an action", "[daemon][options]") {
    TempDir dir;
    const auto empty = dir.write("empty.conf", "{}");
    CHECK(load({"--config", empty.string(), "--print-ski"}).action == Action::print_ski);
    CHECK(load({"--config", empty.string(), "--print-qr"}).action == Action::print_qr);
    // --version and --help must work even where the config file is broken or missing.
    CHECK(load({"--config", "/nonexistent/shipd.conf", "--version"}).action == Action::version);
    CHECK(load({"--help"}).action == Action::help);
    CHECK(load({"-h"}).action == Action::help);
    const std::string usage = usage_text("shipd");
    for (const char* flag : {"--config", "--state-dir", "--port", "--bus-address", "--system", "--session",
                             "--no-mdns", "--ship-id", "--auto-accept", "--log-level", "--print-ski",
                             "--print-qr", "--listen-address", "--version", "--help"})
        CHECK_THAT(usage, Catch::Contains(flag));
}

TEST_CASE("command-line errors name the flag", "[daemon][options]") {
    CHECK_THAT(usage_error({"--port", "70000"}), Catch::StartsWith("--port:") && Catch::Contains("70000"));
    CHECK_THAT(usage_error({"--port", "12ab"}), Catch::StartsWith("--port:") && Catch::Contains("12ab"));
    CHECK_THAT(usage_error({"--port", "-1"}), Catch::StartsWith("--port:"));
    CHECK_THAT(usage_error({"--port", ""}), Catch::StartsWith("--port:"));
    CHECK_THAT(usage_error({"--port"}), Catch::StartsWith("--port:") && Catch::Contains("needs a value"));
    CHECK_THAT(usage_error({"--log-level", "verbose"}),
               Catch::StartsWith("--log-level:") && Catch::Contains("verbose"));
    CHECK_THAT(usage_error({"--prot", "1"}), Catch::Contains("unknown option '--prot'"));
    CHECK_THAT(usage_error({"-x"}), Catch::Contains("unknown option '-x'"));
    CHECK_THAT(usage_error({"--no-mdns=yes"}),
               Catch::StartsWith("--no-mdns:") && Catch::Contains("no value"));
    CHECK_THAT(usage_error({"--system", "--session"}),
               Catch::StartsWith("--session:") && Catch::Contains("--system"));
    CHECK_THAT(usage_error({"--bus-address", "unix:path=/a", "--system"}),
               Catch::StartsWith("--system:") && Catch::Contains("--bus-address"));
    CHECK_THAT(usage_error({"--ship-id", "a=b"}), Catch::StartsWith("--ship-id:"));
    CHECK_THAT(usage_error({"--ship-id", std::string(64, 'x')}), Catch::StartsWith("--ship-id:"));
    CHECK_THAT(usage_error({"--state-dir", ""}), Catch::StartsWith("--state-dir:"));
    CHECK_THAT(usage_error({"stray"}), Catch::Contains("unexpected argument 'stray'"));
}

TEST_CASE("an explicit config file must exist; a missing default one is fine", "[daemon][options]") {
    CHECK_THAT(usage_error({"--config", "/nonexistent/shipd.conf"}),
               Catch::StartsWith("--config:") && Catch::Contains("/nonexistent/shipd.conf"));
    // The default path: only check that a missing default does not throw where the machine has none.
    if (!fs::exists(default_config_file)) CHECK(load({}).port == default_port);
}

TEST_CASE("every config key sets its option", "[daemon][options]") {
    const Options o = apply_config_text(Options{}, R"({
        // comments are allowed
        "state_dir": "/srv/shipd",
        "port": 4712,
        "listen_address": "::1",
        "bus_address": "unix:path=/run/x",
        "mdns": false,
        "log_level": "debug",
        "ship_id": "Vendor-EMS-7",
        "brand": "Vendor", "model": "EMS", "type": "EnergyManagementSystem", "serial": "7",
        "categories": [2, 3],
        "organization": "Vendor GmbH", "country": "DE",
        "auto_accept": true,
        "wait_for_trust": false,
        "max_connections": 5,
        "max_handshakes": 2,
        "double_connection_rule": "legacy",
        "tls_max_version": "1.2"
    })",
                                        "test.conf");
    CHECK(o.state_dir == "/srv/shipd");
    CHECK(o.port == 4712);
    CHECK(o.listen_addresses == std::vector<std::string>{"::1"});
    CHECK(o.bus == BusKind::address);
    CHECK(o.bus_address == "unix:path=/run/x");
    CHECK_FALSE(o.mdns);
    CHECK(o.log_level == spdlog::level::debug);
    CHECK(o.ship_id == "Vendor-EMS-7");
    CHECK(o.brand == "Vendor");
    CHECK(o.model == "EMS");
    CHECK(o.type == "EnergyManagementSystem");
    CHECK(o.serial == "7");
    CHECK(o.categories == std::vector<int>{2, 3});
    CHECK(o.organization == "Vendor GmbH");
    CHECK(o.country == "DE");
    CHECK(o.auto_accept);
    CHECK_FALSE(o.wait_for_trust);
    CHECK(o.max_connections == 5);
    CHECK(o.max_handshakes == 2);
    CHECK(o.double_connection_rule == DoubleConnectionRule::legacy);
    CHECK(o.tls_max_version == TlsVersion::tls1_2);

    CHECK(apply_config_text(Options{}, R"({"bus": "session"})", "t").bus == BusKind::session);
    CHECK(apply_config_text(o, R"({"bus": "system"})", "t").bus == BusKind::system);
}

TEST_CASE("the command line overrides the config file", "[daemon][options]") {
    TempDir dir;
    const auto conf = dir.write("shipd.conf", R"({"port": 1000, "state_dir": "/from/file", "bus": "session",
        "mdns": true, "ship_id": "FromFile", "auto_accept": false, "log_level": "error", "brand": "B"})");
    const Options file_only = load({"--config", conf.string()});
    CHECK(file_only.port == 1000);
    CHECK(file_only.state_dir == "/from/file");
    CHECK(file_only.bus == BusKind::session);
    CHECK(file_only.ship_id == "FromFile");
    CHECK(file_only.log_level == spdlog::level::err);

    const Options both =
        load({"--config", conf.string(), "--port", "2000", "--state-dir", "/from/flag", "--bus-address",
              "unix:path=/b", "--no-mdns", "--ship-id", "FromFlag", "--auto-accept", "--log-level", "warn"});
    CHECK(both.port == 2000);
    CHECK(both.state_dir == "/from/flag");
    CHECK(both.bus == BusKind::address);
    CHECK(both.bus_address == "unix:path=/b");
    CHECK_FALSE(both.mdns);
    CHECK(both.ship_id == "FromFlag");
    CHECK(both.auto_accept);
    CHECK(both.log_level == spdlog::level::warn);
    CHECK(both.brand == "B"); // file-only settings survive
    // Each flag that beat a file key is said once, naming the flag and where the key is.
    CHECK(both.overrides.size() == 7);
    CHECK_THAT(both.overrides.front(), Catch::StartsWith("--state-dir overrides ") &&
                                           Catch::Contains(":1:") && Catch::Contains("\"state_dir\""));
    CHECK(file_only.overrides.empty());
}

TEST_CASE("listen addresses: one or a list, in the file and on the command line", "[daemon][options]") {
    TempDir dir;
    const auto empty = dir.write("empty.conf", "{}");
    CHECK(load({"--config", empty.string()}).listen_addresses.empty());
    const Options flags = load({"--config", empty.string(), "--listen-address", "127.0.0.1, ::1",
                                "--listen-address", "eth0", "--listen-address=fe80::1%eth0"});
    CHECK(flags.listen_addresses == std::vector<std::string>{"127.0.0.1", "::1", "eth0", "fe80::1%eth0"});
    const Options list = apply_config_text(Options{}, R"({"listen_address": ["127.0.0.1", "lo"]})", "t.conf");
    CHECK(list.listen_addresses == std::vector<std::string>{"127.0.0.1", "lo"});
    CHECK(apply_config_text(Options{}, R"({"listen_address": ""})", "t.conf").listen_addresses.empty());
    // The flag replaces the file's list (and says so).
    const auto conf = dir.write("l.conf", R"({"listen_address": "::1"})");
    const Options both = load({"--config", conf.string(), "--listen-address", "127.0.0.1"});
    CHECK(both.listen_addresses == std::vector<std::string>{"127.0.0.1"});
    REQUIRE(both.overrides.size() == 1);
    CHECK_THAT(both.overrides.front(), Catch::StartsWith("--listen-address overrides "));
    CHECK_THAT(usage_error({"--config", empty.string(), "--listen-address", "a b"}),
               Catch::StartsWith("--listen-address:") && Catch::Contains("'a b'"));
    CHECK_THAT(usage_error({"--config", empty.string(), "--listen-address", ""}),
               Catch::StartsWith("--listen-address:"));
}

TEST_CASE("config errors name the file, line and column", "[daemon][options]") {
    // Syntax: RapidJSON's offset becomes line:column.
    CHECK_THAT(config_error("{\n  \"port\": 4711\n  \"mdns\": true\n}"), Catch::StartsWith("test.conf:3:"));
    CHECK_THAT(config_error("{\"port\": 1,}"), Catch::StartsWith("test.conf:1:"));
    CHECK_THAT(config_error("{} {}"), Catch::StartsWith("test.conf:1:"));
    CHECK_THAT(config_error("[1]"), Catch::StartsWith("test.conf:") && Catch::Contains("object"));
    // Unknown key: a typo must not pass silently.
    CHECK_THAT(config_error("{\n  \"port\": 1,\n    \"prot\": 2\n}"),
               Catch::StartsWith("test.conf:3:5:") && Catch::Contains("unknown key \"prot\""));
    CHECK_THAT(config_error("{\"port\": 1, \"port\": 2}"),
               Catch::StartsWith("test.conf:1:13:") && Catch::Contains("twice"));
}

TEST_CASE("config values of the wrong type or range are refused with the key", "[daemon][options]") {
    const std::vector<std::pair<std::string, std::string>> bad = {
        {R"({"port": "4711"})", "\"port\""},
        {R"({"port": 65536})", "\"port\""},
        {R"({"port": -1})", "\"port\""},
        {R"({"port": 1.5})", "\"port\""},
        {R"({"mdns": "yes"})", "\"mdns\""},
        {R"({"auto_accept": 1})", "\"auto_accept\""},
        {R"({"wait_for_trust": null})", "\"wait_for_trust\""},
        {R"({"log_level": "verbose"})", "verbose"},
        {R"({"log_level": 3})", "\"log_level\""},
        {R"({"state_dir": ""})", "\"state_dir\""},
        {R"({"bus": "user"})", "\"bus\""},
        {R"({"bus_address": 5})", "\"bus_address\""},
        {R"({"bus": "system", "bus_address": "unix:path=/x"})", "exclude"},
        {R"({"categories": []})", "\"categories\""},
        {R"({"categories": [2, "3"]})", "\"categories\""},
        {R"({"categories": 2})", "\"categories\""},
        {R"({"ship_id": "a;b"})", "\"ship_id\""},
        {R"({"brand": "0123456789012345678901234567890123"})", "\"brand\""},
        {R"({"country": "DEU"})", "\"country\""},
        {R"({"listen_address": "local host"})", "\"listen_address\""},
        {R"({"listen_address": ["127.0.0.1", 7]})", "\"listen_address\""},
        {R"({"listen_address": "fe80::1%"})", "\"listen_address\""},
        {R"({"max_connections": 0})", "\"max_connections\""},
        {R"({"max_handshakes": "8"})", "\"max_handshakes\""},
        {R"({"double_connection_rule": "newest"})", "\"double_connection_rule\""},
        {R"({"tls_max_version": 1.3})", "\"tls_max_version\""},
    };
    for (const auto& [text, mention] : bad) {
        INFO(text);
        const std::string message = config_error(text);
        CHECK_THAT(message, Catch::StartsWith("test.conf:1:") && Catch::Contains(mention));
    }
}

TEST_CASE("a config file that cannot be read is an error naming it", "[daemon][options]") {
    TempDir dir;
    const auto conf = dir.write("bad.conf", "{\"port\": }");
    try {
        load({"--config", conf.string()});
        FAIL("no error");
    } catch (const UsageError& e) {
        CHECK_THAT(e.what(), Catch::StartsWith(conf.string() + ":1:"));
    }
    CHECK_THROWS_AS(apply_config_file(Options{}, dir.path / "missing.conf"), UsageError);
}

TEST_CASE("the shipped example config is valid", "[daemon][options]") {
    const char* root = std::getenv("SHIPD_SOURCE_ROOT");
    REQUIRE(root != nullptr);
    const Options o = apply_config_file(Options{}, fs::path(root) / "daemon" / "shipd.conf.example");
    CHECK(o.port == default_port);
    CHECK(o.state_dir == default_state_dir);
}

TEST_CASE("a string holding \\u0000 is refused at its place, never cut short", "[daemon][options]") {
    // Each of these was once taken as the text before the NUL ("" passed the non-empty check).
    for (const std::string key : {"state_dir", "bus_address", "log_level", "bus", "double_connection_rule",
                                  "tls_max_version", "brand", "organization"}) {
        INFO(key);
        CHECK_THAT(config_error("{\n  \"" + key + "\": \"warn\\u0000x\"\n}"),
                   Catch::StartsWith("test.conf:2:") && Catch::Contains("\"" + key + "\"") &&
                       Catch::Contains("\\u0000"));
    }
    CHECK_THAT(config_error(R"({"categories": [2], "x\u0000": 1})"), Catch::Contains("\\u0000"));
    // A raw NUL byte would end RapidJSON's reading early and hide the settings after it.
    CHECK_THAT(config_error(std::string("{\"port\": 1}\0{\"port\": 2}", 23)),
               Catch::StartsWith("test.conf:1:12:") && Catch::Contains("NUL"));
}

TEST_CASE("a config starting with a UTF-8 BOM applies every setting", "[daemon][options]") {
    const Options o =
        apply_config_text(Options{}, "\xEF\xBB\xBF{\"port\": 1234, \"brand\": \"Acme\"}", "test.conf");
    CHECK(o.port == 1234);
    CHECK(o.brand == "Acme");
    // Stray BOM bytes are not a BOM: refused, never skipped into silently ignored settings.
    CHECK_THAT(config_error("\xBB{\"port\": 1234}"), Catch::StartsWith("test.conf:1:1:"));
    CHECK_THAT(config_error("\xEF\xBB{\"port\": 1234}"), Catch::StartsWith("test.conf:1:1:"));
    // Positions after a BOM count from the first character a user sees.
    CHECK_THAT(config_error("\xEF\xBB\xBF{\"prot\": 1}"), Catch::StartsWith("test.conf:1:2:"));
}

TEST_CASE("a deeply nested config is refused with a message, not a crash", "[daemon][options]") {
    // Two million levels overflowed the recursive parser's stack (exit 139).
    CHECK_THAT(config_error(std::string(2'000'000, '[')),
               Catch::StartsWith("test.conf:1:") && Catch::Contains("nested deeper than"));
    CHECK_THAT(config_error("{\"categories\": " + std::string(100, '[') + std::string(100, ']') + "}"),
               Catch::Contains("nested deeper than"));
    std::string objects;
    for (int i = 0; i < 200'000; ++i)
        objects += "{\"a\":";
    CHECK_THAT(config_error(objects), Catch::Contains("nested deeper than"));
    // A sane file is nowhere near the bound.
    CHECK(apply_config_text(Options{}, R"({"categories": [2, 4]})", "test.conf").categories.size() == 2);
}

TEST_CASE("max_connections and max_handshakes go up to 65536", "[daemon][options]") {
    const Options o =
        apply_config_text(Options{}, R"({"max_connections": 10000, "max_handshakes": 65536})", "test.conf");
    CHECK(o.max_connections == 10000);
    CHECK(o.max_handshakes == 65536);
    CHECK_THAT(config_error(R"({"max_connections": 65537})"), Catch::Contains("\"max_connections\""));
}

TEST_CASE("a SHIP ID that SHIP messages cannot carry is refused at start-up, naming the flag or key",
          "[daemon][options]") {
    TempDir dir;
    const auto check = [](const Options& o) -> std::string {
        try {
            check_ship_identity(o);
        } catch (const UsageError& e) {
            return e.what();
        }
        return "accepted";
    };
    const auto empty = dir.write("empty.conf", "{}");
    for (const std::string id : {"a[b", "a]b", "a{b", "a}b", "a\"b", "a\\b", "my-datagram-1", "\xff\xfe"}) {
        INFO(id);
        CHECK_THAT(check(load({"--config", empty.string(), "--ship-id", id})),
                   Catch::StartsWith("--ship-id: SHIP ID"));
    }
    CHECK(check(load({"--config", empty.string(), "--ship-id", "Acme-HEMS-1"})) == "accepted");

    const auto in_file = dir.write("id.conf", "{\n  \"ship_id\": \"x{y\"\n}");
    CHECK_THAT(check(load({"--config", in_file.string()})),
               Catch::StartsWith(in_file.string() + ":2:3: \"ship_id\"") && Catch::Contains("x{y"));
    // The command line wins over the file, and only the SHIP ID in use is judged.
    CHECK(check(load({"--config", in_file.string(), "--ship-id", "ok-1"})) == "accepted");

    // Without a SHIP ID the derived one (brand-model-serial) is judged by the part that breaks it.
    const auto derived = dir.write("derived.conf", "{\"brand\": \"Acme\", \"model\": \"big datagram\"}");
    CHECK_THAT(check(load({"--config", derived.string()})),
               Catch::StartsWith(derived.string() + ":1:19: \"model\"") && Catch::Contains("derived"));
    CHECK(check(load({"--config", derived.string(), "--ship-id", "ok-1"})) == "accepted");
    // "type" is announced over mDNS only, never in a SHIP message.
    const auto type = dir.write("type.conf", "{\"type\": \"[x]\"}");
    CHECK(check(load({"--config", type.string()})) == "accepted");
}

TEST_CASE("pairing keys: defaults, values, and ranges named in the error", "[daemon][options]") {
    const Options defaults;
    CHECK(defaults.pairing_timeout == 120);
    CHECK(defaults.pairing_quiet_period == 600);
    CHECK(defaults.max_pending == 16);
    CHECK(defaults.max_pending_per_address == 4);
    const Options o = apply_config_text(
        Options{},
        R"({"pairing_timeout": 2, "pairing_quiet_period": 0, "max_pending": 64, "max_pending_per_address": 64})",
        "test.conf");
    CHECK(o.pairing_timeout == 2);
    CHECK(o.pairing_quiet_period == 0);
    CHECK(o.max_pending == 64);
    CHECK(o.max_pending_per_address == 64);
    CHECK_THAT(config_error(R"({"pairing_timeout": 0})"),
               Catch::Contains("\"pairing_timeout\"") && Catch::Contains("1 to 86400"));
    CHECK_THAT(config_error(R"({"pairing_quiet_period": 86401})"), Catch::Contains("0 to 86400"));
    CHECK_THAT(config_error(R"({"max_pending": 0})"), Catch::Contains("\"max_pending\""));
    CHECK_THAT(config_error(R"({"max_pending_per_address": "4"})"),
               Catch::Contains("\"max_pending_per_address\""));
}
