#include "shipctl_support.hpp"

#include <signal.h>

#include <cstdlib>
#include <stdexcept>

#include <catch2/catch.hpp>

namespace ship::test {

namespace {
std::string env_or_throw(const char* name) {
    const char* v = std::getenv(name);
    if (!v) throw std::runtime_error(std::string(name) + " is not set (run through meson test)");
    return v;
}
} // namespace

std::string shipctl_binary() {
    return env_or_throw("SHIPCTL_BINARY");
}
std::string em_example_binary() {
    return env_or_throw("SHIPD_EM_EXAMPLE");
}
std::filesystem::path shipctl_source_dir() {
    return env_or_throw("SHIPCTL_SOURCE_DIR");
}

EnvOverrides plain_env() {
    return {{"NO_COLOR", "1"}, {"LC_ALL", "C.UTF-8"}};
}

ShipctlNode::ShipctlNode(const std::filesystem::path& dir, const std::string& name)
    : home(dir / name)
    , bus((std::filesystem::create_directories(home), home)) {
    start();
}

void ShipctlNode::restart() {
    client.reset();
    process->signal(SIGTERM);
    REQUIRE(process->wait_exit(10s) == 0);
    start();
}

void ShipctlNode::start() {
    process = std::make_unique<ShipdProcess>(
        std::vector<std::string>{"--state-dir", (home / "state").string(), "--port", "0", "--no-mdns",
                                 "--bus-address", bus.address(), "--log-level", "debug"},
        home / "shipd.log");
    REQUIRE(process->wait_notify("READY=1", 20s));
    client = std::make_unique<Client>(bus.address());
    ski = client->hub().LocalSKI();
    port = client->hub().Port();
}

std::vector<std::string> ShipctlNode::ctl_argv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {shipctl_binary(), "--bus-address", bus.address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
}

RunResult ShipctlNode::ctl(const std::vector<std::string>& args, const std::string& input) const {
    return run(ctl_argv(args), plain_env(), input);
}

int ShipctlNode::count(const std::string& signal, const std::string& ski_arg) const {
    int n = 0;
    for (const auto& s : client->signals())
        if (s.name == signal && !s.args.empty() && s.args[0] == ski_arg) ++n;
    return n;
}

} // namespace ship::test
