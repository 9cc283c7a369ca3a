// shipctl's pure parts: the command line, SKI prefix resolution, table layout.
#include <sstream>

#include <catch2/catch.hpp>

#include "cli.hpp"
#include "ski_prefix.hpp"
#include "table.hpp"

using namespace ship::ctl;

namespace {
int usage_code(const std::vector<std::string>& argv) {
    try {
        parse_command_line(argv);
    } catch (const CliError& e) {
        return e.exit_code();
    }
    return 0;
}
} // namespace

TEST_CASE("command line: options anywhere, one bus, argument counts", "[shipctl]") {
    auto inv = parse_command_line({"peers", "--json", "--bus-address", "unix:path=/x"});
    CHECK(inv.command == "peers");
    CHECK(inv.json);
    CHECK(inv.bus == BusKind::address);
    CHECK(inv.bus_address == "unix:path=/x");
    inv = parse_command_line({"--wait=2.5", "send", "5a", "-"});
    CHECK(inv.wait_seconds == 2.5);
    CHECK(inv.args == std::vector<std::string>{"5a", "-"});
    inv = parse_command_line({"disconnect", "5a", "--", "--why"});
    CHECK(inv.args == std::vector<std::string>{"5a", "--why"});
    CHECK(parse_command_line({"trust", "--help"}).help);
    CHECK(bus_label(parse_command_line({"--session", "qr"})) == "the session bus");
    CHECK(bus_label(parse_command_line({"qr"})) == "the system bus");

    CHECK(usage_code({}) == exit_usage);
    CHECK(usage_code({"trust"}) == exit_usage);
    CHECK(usage_code({"trust", "a", "b"}) == exit_usage);
    CHECK(usage_code({"--system", "--session", "qr"}) == exit_usage);
    CHECK(usage_code({"--wait", "-1", "qr"}) == exit_usage);
    CHECK(usage_code({"--wait", "soon", "qr"}) == exit_usage);
    CHECK(usage_code({"--json=yes", "qr"}) == exit_usage);
    CHECK(usage_code({"qr", "--bus-address"}) == exit_usage);
}

TEST_CASE("SKI resolution: full SKIs stand alone, prefixes must name exactly one", "[shipctl]") {
    const std::vector<std::string> known = {
        "5a1c000000000000000000000000000000000001", "5a1c000000000000000000000000000000000002",
        "beef000000000000000000000000000000000000", "beef000000000000000000000000000000000000"};
    CHECK(std::get<std::string>(resolve_ski("BEEF", known)) == known[2]); // duplicates are one SKI
    CHECK(std::get<std::string>(resolve_ski("5a1c 0000 0000 0000 0000 0000 0000 0000 0000 0003", known)) ==
          "5a1c000000000000000000000000000000000003");
    CHECK(std::get<SkiAmbiguous>(resolve_ski("5a-1c", known)).candidates ==
          std::vector<std::string>{known[0], known[1]});
    CHECK(std::holds_alternative<SkiNoMatch>(resolve_ski("ff", known)));
    CHECK(std::holds_alternative<SkiNotHex>(resolve_ski("xyz", known)));
    CHECK(std::holds_alternative<SkiNotHex>(resolve_ski("", known)));
    CHECK(std::holds_alternative<SkiNotHex>(resolve_ski(std::string(41, 'a'), known)));
    CHECK(is_full_ski(known[0]));
    CHECK_FALSE(is_full_ski("5a1c"));
}

TEST_CASE("tables align by display width and paint only when asked", "[shipctl]") {
    Table t({"SKI", "STATE"});
    t.add({"ä€x", Cell("completed", Tone::good)});
    t.add({"abcdef", "none"});
    std::ostringstream plain;
    t.print(plain, false);
    CHECK(plain.str() == "SKI     STATE\nä€x     completed\nabcdef  none\n");
    std::ostringstream coloured;
    t.print(coloured, true);
    CHECK(coloured.str().find("\033[32mcompleted\033[0m") != std::string::npos);
    CHECK(display_width("ä€x") == 3);
    CHECK(paint("x", Tone::bad, false) == "x");
}
