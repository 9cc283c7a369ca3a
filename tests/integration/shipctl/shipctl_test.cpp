// shipctl against two real shipd processes on private buses: everything is done with the shipctl binary
// (the D-Bus client from dbus_test_support only observes, to wait on events with deadlines).
#include <signal.h>

#include <regex>
#include <sstream>

#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include "shipctl_support.hpp"

using namespace std::chrono_literals;
using ship::test::Child;
using ship::test::PrivateBus;
using ship::test::RunResult;
using ship::test::ShipctlNode;
using ship::test::ShipdProcess;
using ship::test::TempDir;

namespace {

const std::string spine_read =
    R"({"datagram":{"header":{"specificationVersion":"1.3.0","msgCounter":7,"cmdClassifier":"read"},"payload":{"cmd":[{"nodeManagementDetailedDiscoveryData":{}}]}}})";

std::string describe(const RunResult& r) {
    return "exit " + std::to_string(r.status) + "\n--- stdout\n" + r.out + "--- stderr\n" + r.err;
}

rapidjson::Document parse(const std::string& text) {
    rapidjson::Document d;
    d.Parse(text.c_str());
    INFO(text);
    REQUIRE_FALSE(d.HasParseError());
    return d;
}

std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

// Trust both ways and dial with shipctl; returns once both daemons report the connection.
void pair(ShipctlNode& a, ShipctlNode& b) {
    auto r = a.ctl({"trust", b.ski});
    REQUIRE(r.status == 0);
    r = b.ctl({"trust", a.ski});
    REQUIRE(r.status == 0);
    r = a.ctl({"--wait", "30", "connect", b.ski.substr(0, 8), "127.0.0.1", std::to_string(b.port)});
    INFO(describe(r));
    REQUIRE(r.status == 0);
    CHECK(r.out == "connected to " + b.ski + " at 127.0.0.1:" + std::to_string(b.port) + "\n");
    REQUIRE(a.client->wait_for([&] { return a.count("PeerConnected", b.ski) == 1; }, 15s));
    REQUIRE(b.client->wait_for([&] { return b.count("PeerConnected", a.ski) == 1; }, 15s));
}

} // namespace

TEST_CASE("shipctl pairs two shipd, lists them, and sends data that monitor shows on the other side",
          "[shipctl]") {
    TempDir dir;
    ShipctlNode a(dir.path, "a"), b(dir.path, "b");

    auto r = a.ctl({"status", "ski"});
    REQUIRE(r.status == 0);
    CHECK(r.out == a.ski + "\n");
    r = b.ctl({"status", "port"});
    CHECK(r.out == std::to_string(b.port) + "\n");

    Child monitor(b.ctl_argv({"monitor"}), ship::test::plain_env());
    Child json_monitor(b.ctl_argv({"monitor", "--json"}), ship::test::plain_env());
    REQUIRE(monitor.wait_for("shipctl: monitoring org.shipd.Hub1", 10s));
    REQUIRE(json_monitor.wait_for("shipctl: monitoring org.shipd.Hub1", 10s));

    pair(a, b);
    INFO(monitor.output());
    REQUIRE(monitor.wait_for("PeerConnected      " + a.ski, 10s));

    SECTION("peers: an aligned table, and the same facts as JSON") {
        r = a.ctl({"peers"});
        INFO(describe(r));
        REQUIRE(r.status == 0);
        const auto rows = lines(r.out);
        REQUIRE(rows.size() == 2);
        CHECK_THAT(rows[0], Catch::StartsWith("SKI ") && Catch::Contains("SHIP ID") &&
                                Catch::Contains("STATE") && Catch::Contains("CONNECTED"));
        CHECK_THAT(rows[1], Catch::StartsWith(b.ski));
        // Aligned: each value starts where its header does.
        for (const auto& [header, value] : {std::pair<std::string, std::string>{"STATE", "completed"},
                                            {"ADDRESS", "127.0.0.1:" + std::to_string(b.port)}})
            CHECK(rows[1].find(value) == rows[0].find(header));
        CHECK(rows[1].find("\033[") == std::string::npos); // no colour into a pipe

        r = b.ctl({"peers", "--json"});
        REQUIRE(r.status == 0);
        const auto doc = parse(r.out);
        REQUIRE(doc.IsArray());
        REQUIRE(doc.Size() == 1);
        CHECK(doc[0]["ski"].GetString() == a.ski);
        CHECK(doc[0]["state"].GetString() == std::string("completed"));
        CHECK(doc[0]["trusted"].GetBool());
        CHECK(doc[0]["connected"].GetBool());
        // SPINE data only: the SHIP handshake is not counted, and no data has flowed yet.
        CHECK(doc[0]["messages_in"].GetUint64() == 0);
    }

    SECTION("send (argument and stdin, by SKI prefix) arrives as DataReceived lines in monitor") {
        r = a.ctl({"send", b.ski.substr(0, 6), spine_read});
        INFO(describe(r));
        REQUIRE(r.status == 0);
        CHECK(r.out == "sent " + std::to_string(spine_read.size()) + " bytes to " + b.ski + "\n");
        REQUIRE(monitor.wait_for("DataReceived       " + a.ski + "  " + spine_read, 10s));
        // A timestamp leads every line.
        const std::regex line("(^|\n)\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3}  DataReceived ");
        CHECK(std::regex_search(monitor.output(), line));

        REQUIRE(json_monitor.wait_for("\"signal\":\"DataReceived\"", 10s));
        for (const auto& l : lines(json_monitor.output())) {
            if (l.find("\"DataReceived\"") == std::string::npos) continue;
            const auto event = parse(l);
            CHECK(event["ski"].GetString() == a.ski);
            CHECK(event["json"].GetString() == spine_read);
            CHECK(std::string(event["time"].GetString()).size() >= 23);
        }

        const std::string from_stdin =
            R"({"datagram":{"header":{"msgCounter":8},"payload":{"cmd":[{"a":1}]}}})";
        r = a.ctl({"send", b.ski, "-"}, from_stdin + "\n");
        INFO(describe(r));
        REQUIRE(r.status == 0);
        REQUIRE(monitor.wait_for(from_stdin, 10s));
    }

    SECTION("disconnect shows as PeerDisconnected with the reason; Ctrl-C ends monitor with 0") {
        r = a.ctl({"disconnect", b.ski.substr(0, 10), "maintenance"});
        INFO(describe(r));
        REQUIRE(r.status == 0);
        REQUIRE(monitor.wait_for("PeerDisconnected   " + a.ski, 10s));
        monitor.signal(SIGINT);
        CHECK(monitor.wait_exit(10s) == 0);
    }

    SECTION("qr, and auto-accept on is reflected in status") {
        r = a.ctl({"qr"});
        REQUIRE(r.status == 0);
        CHECK_THAT(r.out, Catch::StartsWith("SHIP;SKI:" + a.ski + ";") && Catch::EndsWith("ENDSHIP;\n"));
        r = a.ctl({"qr", "--json"});
        CHECK_THAT(parse(r.out)["qr"].GetString(), Catch::StartsWith("SHIP;SKI:" + a.ski));

        r = a.ctl({"auto-accept", "on"});
        REQUIRE(r.status == 0);
        CHECK(r.out == "auto-accept on\n");
        r = a.ctl({"status"});
        INFO(r.out);
        CHECK(std::regex_search(r.out, std::regex("(^|\n)Auto-accept +on\n")));
        CHECK(std::regex_search(r.out, std::regex("(^|\n)Peers +1 known, 1 trusted, 1 connected\n")));
        CHECK(std::regex_search(r.out, std::regex("(^|\n)SKI +" + a.ski + "\n")));
        CHECK(parse(a.ctl({"status", "--json"}).out)["auto_accept"].GetBool());
        CHECK(a.client->hub().AutoAccept());
        r = a.ctl({"auto-accept", "off"});
        CHECK(a.ctl({"status", "auto-accept"}).out == "off\n");
    }
}

TEST_CASE("monitor says when shipd leaves and comes back, and goes on reporting", "[shipctl]") {
    TempDir dir;
    ShipctlNode a(dir.path, "a"), b(dir.path, "b");
    Child monitor(a.ctl_argv({"monitor"}), ship::test::plain_env());
    REQUIRE(monitor.wait_for("shipctl: monitoring org.shipd.Hub1", 10s));
    pair(a, b);
    REQUIRE(monitor.wait_for("PeerConnected      " + b.ski, 10s));
    const auto before = monitor.output().size();

    a.restart(); // a knows where b listens and trusts it: it dials b again by itself
    INFO(monitor.output());
    REQUIRE(monitor.wait_for("shipd left the bus at", 10s, before));
    REQUIRE(monitor.wait_for("shipd is back on the bus at", 10s, before));
    CHECK(monitor.wait_for("PeerConnected      " + b.ski, 30s, before));
    monitor.signal(SIGTERM);
    CHECK(monitor.wait_exit(10s) == 0);
}

TEST_CASE("shipctl errors: exit code 1 for refusals, 2 for usage, messages that name the fix", "[shipctl]") {
    TempDir dir;
    ShipctlNode a(dir.path, "a");
    const std::string stranger = "5a1c0de5a1c0de5a1c0de5a1c0de5a1c0de5a1c0";
    RunResult r;

    SECTION("no shipd on the bus") {
        PrivateBus empty(dir.path / "a");
        r = ship::test::run({ship::test::shipctl_binary(), "--bus-address", empty.address(), "peers"},
                            ship::test::plain_env());
        CHECK(r.status == 1);
        CHECK(r.err == "shipctl: shipd is not running on the bus at " + empty.address() +
                           " (org.shipd.Hub1 not found)\n");
        r = ship::test::run(
            {ship::test::shipctl_binary(), "--bus-address", empty.address(), "--wait", "0.3", "status"},
            ship::test::plain_env());
        CHECK(r.status == 1);
        CHECK_THAT(r.err, Catch::Contains("shipd did not appear on the bus at"));
        r = ship::test::run({ship::test::shipctl_binary(), "--bus-address",
                             "unix:path=" + (dir.path / "nobus").string(), "status"},
                            ship::test::plain_env());
        CHECK(r.status == 1);
        CHECK_THAT(r.err, Catch::StartsWith("shipctl: cannot connect to the bus at unix:path="));
    }

    SECTION("connect to an untrusted peer names `shipctl trust`") {
        r = a.ctl({"connect", stranger, "127.0.0.1", "4711"});
        CHECK(r.status == 1);
        CHECK(r.err ==
              "shipctl: peer " + stranger + " is not trusted: run `shipctl trust " + stranger + "` first\n");
        r = a.ctl({"connect", "--json", stranger, "127.0.0.1", "4711"});
        CHECK(r.status == 1);
        CHECK(r.out.empty());
    }

    SECTION("SKIs: not hex, no match, ambiguous prefix (candidates listed), unique prefix") {
        const std::string one = "abcd000000000000000000000000000000000001";
        const std::string two = "abcd000000000000000000000000000000000002";
        REQUIRE(a.ctl({"trust", one}).status == 0);
        REQUIRE(a.ctl({"trust", "ABCD 0000-0000 0000 0000 0000 0000 0000 0000 0002"}).status == 0);

        r = a.ctl({"untrust", "xyz"});
        CHECK(r.status == 2);
        CHECK_THAT(r.err, Catch::StartsWith("shipctl: 'xyz' is not a SKI"));
        r = a.ctl({"untrust", "99"});
        CHECK(r.status == 2);
        CHECK_THAT(r.err, Catch::StartsWith("shipctl: no known peer's SKI starts with '99'"));
        r = a.ctl({"untrust", "abcd"});
        CHECK(r.status == 2);
        CHECK(r.err ==
              "shipctl: 'abcd' matches more than one SKI; give more of it:\n  " + one + "\n  " + two + "\n");
        r = a.ctl({"untrust", one.substr(0, 39)});
        CHECK(r.status == 2); // still both
        r = a.ctl({"untrust", two.substr(0, 39) + "2"});
        CHECK(r.status == 0);
        r = a.ctl({"untrust", "abcd"});
        INFO(describe(r));
        CHECK(r.status == 0);
        CHECK(r.out == "untrusted " + one + " (its connection is closed; it will not be dialled again)\n");
    }

    SECTION("send: not connected (1), bad JSON (2)") {
        REQUIRE(a.ctl({"trust", stranger}).status == 0);
        r = a.ctl({"send", "5a1c", spine_read});
        CHECK(r.status == 1);
        CHECK_THAT(r.err,
                   Catch::StartsWith("shipctl: peer " + stranger + " is not connected: see `shipctl peers`"));
        r = a.ctl({"send", "5a1c", "{\"datagram\":"});
        CHECK(r.status == 2);
        CHECK_THAT(r.err, Catch::StartsWith("shipctl: JSON is not valid: "));
        r = a.ctl({"send", "5a1c", "[1,2]"});
        CHECK(r.status == 2);
        r = a.ctl({"disconnect", "5a1c"});
        CHECK(r.status == 1);
        CHECK_THAT(r.err, Catch::Contains("is not connected"));
    }

    SECTION("usage errors and help") {
        r = a.ctl({"frobnicate"});
        CHECK(r.status == 2);
        CHECK_THAT(r.err, Catch::StartsWith("shipctl: unknown command 'frobnicate'\nRun `shipctl --help`"));
        r = a.ctl({"trust"});
        CHECK(r.status == 2);
        CHECK_THAT(r.err, Catch::StartsWith("shipctl: usage: shipctl trust SKI"));
        r = a.ctl({"--bogus", "status"});
        CHECK(r.status == 2);
        CHECK_THAT(r.err, Catch::StartsWith("shipctl: unknown option '--bogus'"));
        r = a.ctl({"--session", "status"}); // with --bus-address: two bus choices
        CHECK(r.status == 2);
        r = a.ctl({"connect", stranger, "127.0.0.1", "70000"});
        CHECK(r.status == 2);
        CHECK_THAT(r.err, Catch::Contains("PORT must be a TCP port from 1 to 65535, not '70000'"));
        r = a.ctl({"auto-accept", "maybe"});
        CHECK(r.status == 2);
        r = a.ctl({"status", "colour"});
        CHECK(r.status == 2);

        r = a.ctl({"trust", "--help"});
        CHECK(r.status == 0);
        CHECK_THAT(r.out, Catch::StartsWith("Usage: shipctl [OPTIONS] trust SKI\n"));
        r = a.ctl({"help", "send"});
        CHECK(r.status == 0);
        CHECK_THAT(r.out, Catch::StartsWith("Usage: shipctl [OPTIONS] send SKI JSON|-\n"));
        r = a.ctl({"--help"});
        CHECK(r.status == 0);
        for (const char* command : {"status", "peers", "discovered", "trust", "untrust", "connect",
                                    "disconnect", "cancel", "send", "monitor", "qr", "auto-accept"})
            CHECK_THAT(r.out, Catch::Contains(std::string("\n  ") + command + " "));
    }
}

TEST_CASE("shipctl --wait waits for a shipd that starts after it", "[shipctl]") {
    TempDir dir;
    std::filesystem::create_directories(dir.path / "late");
    PrivateBus bus(dir.path / "late");
    Child ctl({ship::test::shipctl_binary(), "--bus-address", bus.address(), "--wait", "30", "status", "ski"},
              ship::test::plain_env());
    ShipdProcess shipd({"--state-dir", (dir.path / "late" / "state").string(), "--port", "0", "--no-mdns",
                        "--bus-address", bus.address()},
                       dir.path / "late" / "shipd.log");
    REQUIRE(ctl.wait_exit(40s) == 0);
    CHECK(std::regex_match(ctl.output(), std::regex("[0-9a-f]{40}\n")));
}

TEST_CASE("bash completion: commands, options, and SKIs from the shipd on the line's bus", "[shipctl]") {
    TempDir dir;
    ShipctlNode a(dir.path, "a");
    const std::string trusted = "5a1c0de5a1c0de5a1c0de5a1c0de5a1c0de5a1c0";
    REQUIRE(a.ctl({"trust", trusted}).status == 0);

    // The bus address as bash hands it over: split at ':' and '=' (COMP_WORDBREAKS).
    std::string split_address;
    std::string word;
    for (const char c : a.bus.address()) {
        if (c == ':' || c == '=') {
            split_address += "'" + word + "' '" + std::string(1, c) + "' ";
            word.clear();
        } else {
            word += c;
        }
    }
    split_address += "'" + word + "'";
    const auto script = "source '" + (ship::test::shipctl_source_dir() / "shipctl.bash").string() + "'\n" +
                        R"(complete -p shipctl
try() { COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMPREPLY=(); _shipctl; echo "[${COMPREPLY[*]}]"; }
try shipctl tr
try shipctl peers --j
try shipctl auto-accept o
try shipctl status p
try shipctl --bus-address )" +
                        split_address +
                        R"( untrust ''
try shipctl --bus-address ')" +
                        a.bus.address() +
                        R"(' send 5a ''
try shipctl --bus-address ')" +
                        a.bus.address() + R"(' send 5a
)";
    auto env = ship::test::plain_env();
    env["PATH"] = std::filesystem::path(ship::test::shipctl_binary()).parent_path().string() + ":" +
                  std::getenv("PATH");
    const auto r = ship::test::run({"bash", "--noprofile", "--norc", "-c", script}, env);
    INFO(describe(r));
    REQUIRE(r.status == 0);
    CHECK(lines(r.out) == std::vector<std::string>{"complete -F _shipctl shipctl", "[trust]", "[--json]",
                                                   "[on off]", "[port]", "[" + trusted + "]", "[-]",
                                                   "[" + trusted + "]"});
}
