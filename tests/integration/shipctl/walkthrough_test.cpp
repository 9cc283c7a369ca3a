// daemon/shipctl/README.md's walkthrough, run as written: the blocks marked `<!-- walkthrough: terminal 1
// -->` go, one after the other, into one bash (as typed into terminal 1); the `terminal 2` block (the
// monitor) runs as a second process. Between blocks the test waits for what the README says the reader will
// see.
#include <signal.h>

#include <fstream>
#include <regex>
#include <sstream>

#include <catch2/catch.hpp>

#include "shipctl_support.hpp"

using namespace std::chrono_literals;
using ship::test::Child;
using ship::test::TempDir;

namespace {

struct Block {
    std::string terminal, code;
};

std::vector<Block> walkthrough_blocks(const std::filesystem::path& readme) {
    std::ifstream in(readme);
    std::vector<Block> blocks;
    const std::regex marker(R"(^<!-- walkthrough: (terminal \d) -->$)");
    std::string line, terminal;
    bool in_code = false;
    while (std::getline(in, line)) {
        std::smatch m;
        if (!in_code && std::regex_match(line, m, marker)) {
            terminal = m[1];
        } else if (!in_code && !terminal.empty() && line.rfind("```", 0) == 0) {
            in_code = true;
            blocks.push_back({terminal, {}});
        } else if (in_code && line == "```") {
            in_code = false;
            terminal.clear();
        } else if (in_code) {
            blocks.back().code += line + "\n";
        }
    }
    return blocks;
}

} // namespace

TEST_CASE("the README walkthrough pairs, monitors and sends with shipctl, as written",
          "[shipctl][walkthrough]") {
    const auto blocks = walkthrough_blocks(ship::test::shipctl_source_dir() / "README.md");
    REQUIRE(blocks.size() == 6);
    REQUIRE(blocks[1].terminal == "terminal 2");

    TempDir dir;
    auto env = ship::test::plain_env();
    env["TMPDIR"] = dir.path.string();
    env["PATH"] = std::filesystem::path(std::getenv("SHIPD_BINARY")).parent_path().string() + ":" +
                  std::filesystem::path(ship::test::shipctl_binary()).parent_path().string() + ":" +
                  std::getenv("PATH");

    Child terminal1({"bash", "--noprofile", "--norc"}, env);
    std::unique_ptr<Child> terminal2;
    terminal1.write("set -euo pipefail\n");
    int step = 0;
    std::size_t monitor_seen = 0;
    // Runs one block in terminal 1; returns its output.
    auto type = [&](const std::string& code) {
        const std::size_t from = terminal1.output().size();
        const std::string done = "@@step " + std::to_string(++step) + " done@@";
        terminal1.write(code + "echo '" + done + "'\n");
        INFO("terminal 1:\n" << terminal1.output());
        INFO("shipd a:\n"
             << [&] {
                    std::ifstream log(dir.path / "shipd-demo" / "a.log");
                    std::stringstream s;
                    s << log.rdbuf();
                    return s.str();
                }());
        REQUIRE(terminal1.wait_for(done, 60s, from));
        return terminal1.output().substr(from);
    };
    auto monitor_shows = [&](const std::string& text) {
        INFO("terminal 2:\n" << terminal2->output());
        REQUIRE(terminal2->wait_for(text, 15s, monitor_seen));
        monitor_seen = terminal2->output().find(text, monitor_seen) + text.size();
    };

    const auto started = type(blocks[0].code);
    CHECK(std::regex_search(started, std::regex("(^|\n)Port +[0-9]+\n")));

    terminal2 = std::make_unique<Child>(
        std::vector<std::string>{"bash", "--noprofile", "--norc", "-c", blocks[1].code}, env);
    monitor_shows("shipctl: monitoring org.shipd.Hub1");

    const auto paired = type(blocks[2].code);
    CHECK_THAT(paired, Catch::Contains("connected to "));
    // Both `peers` tables show the other side trusted and connected.
    CHECK(std::regex_search(paired, std::regex("completed +yes +yes")));
    monitor_shows("PeerConnected");

    type(blocks[3].code);
    monitor_shows("DataReceived");
    CHECK_THAT(terminal2->output(), Catch::Contains("nodeManagementDetailedDiscoveryData"));

    type(blocks[4].code);
    monitor_shows("PeerDisconnected");

    terminal2->signal(SIGINT); // "Ctrl-C in terminal 2"
    CHECK(terminal2->wait_exit(10s) == 0);
    type(blocks[5].code);
    terminal1.close_input();
    CHECK(terminal1.wait_exit(30s) == 0);
    CHECK_FALSE(std::filesystem::exists(dir.path / "shipd-demo"));
}
