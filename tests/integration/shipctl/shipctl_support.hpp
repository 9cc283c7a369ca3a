// What the shipctl tests share: a node (private bus, real shipd, an observing D-Bus client) and running
// the shipctl binary against a node's bus as a user would.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "../daemon/dbus_test_support.hpp"
#include "../shipd/shipd_process.hpp"
#include "child.hpp"

namespace ship::test {

// $SHIPCTL_BINARY, $SHIPD_EM_EXAMPLE, $SHIPCTL_SOURCE_DIR (set by meson).
std::string shipctl_binary();
std::string em_example_binary();
std::filesystem::path shipctl_source_dir();

// Children see no colour and a C locale, whatever the developer's terminal has.
EnvOverrides plain_env();

struct ShipctlNode {
    ShipctlNode(const std::filesystem::path& dir, const std::string& name);
    // SIGTERM, wait for exit 0, start again with the same state on the same bus (the port changes).
    void restart();

    // shipctl --bus-address <this bus> args...
    RunResult ctl(const std::vector<std::string>& args, const std::string& input = {}) const;
    std::vector<std::string> ctl_argv(const std::vector<std::string>& args) const;
    // Counts signals the observing client saw with this first argument.
    int count(const std::string& signal, const std::string& ski_arg) const;

    std::filesystem::path home;
    PrivateBus bus;
    std::unique_ptr<ShipdProcess> process;
    std::unique_ptr<Client> client; // observes only; the tests act through shipctl
    std::string ski;
    std::uint16_t port = 0;

private:
    void start();
};

} // namespace ship::test
