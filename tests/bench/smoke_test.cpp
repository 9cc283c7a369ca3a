// shipbench against a real shipd (private bus, auto-accept): five connections each reach data exchange and
// shipbench says so. Only counts are checked, never timings.
#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>

#include <rapidjson/document.h>

#include "../integration/daemon/dbus_test_support.hpp"
#include "../integration/shipd/shipd_process.hpp"

using namespace std::chrono_literals;
using ship::test::PrivateBus;
using ship::test::ShipdProcess;
using ship::test::TempDir;

namespace {

struct Ran {
    int status = -1;
    std::string out;
};

Ran run(const std::string& command) {
    Ran ran;
    FILE* pipe = popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::array<char, 4096> buffer{};
    std::size_t n = 0;
    while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
        ran.out.append(buffer.data(), n);
    const int status = pclose(pipe);
    ran.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return ran;
}

} // namespace

TEST_CASE("shipbench completes five SHIP handshakes with a running shipd and reports them") {
    TempDir dir;
    PrivateBus bus(dir.path);
    ShipdProcess shipd({"--state-dir", (dir.path / "state").string(), "--port", "0", "--no-mdns",
                        "--auto-accept", "--bus-address", bus.address()},
                       dir.path / "shipd.log");
    INFO(shipd.log());
    REQUIRE(shipd.wait_notify("READY=1", 10s));

    // READY comes with "STATUS=Listening on port N as SKI X": all shipbench needs to dial.
    std::string port, ski;
    const std::regex status_line("Listening on port ([0-9]+) as SKI ([0-9a-f]{40})");
    for (const auto& note : shipd.notifications()) {
        std::smatch m;
        if (std::regex_search(note, m, status_line)) port = m[1], ski = m[2];
    }
    REQUIRE_FALSE(port.empty());

    const auto ran = run(std::string(std::getenv("SHIPBENCH_BINARY")) + " --port " + port + " --ski " + ski +
                         " --connections 5 --concurrency 2 --messages 3 --json --pid " +
                         std::to_string(shipd.pid()) + " --deadline 60");
    INFO(ran.out);
    CHECK(ran.status == 0);
    rapidjson::Document report;
    REQUIRE_FALSE(report.Parse(ran.out.c_str()).HasParseError());
    CHECK(report["completed"].GetUint64() == 5);
    CHECK(report["messages_sent"].GetUint64() == 15);
    CHECK(report["failures"].ObjectEmpty());
    CHECK(report["rss_before_kib"].IsNumber());
    CHECK(report["handshake_ms"]["max"].GetDouble() > 0);
}
