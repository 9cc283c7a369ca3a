// shipctl: the command-line client of shipd's D-Bus API (org.shipd.Hub1).
#include <iostream>

#include <sdbus-c++/sdbus-c++.h>

#include "cli.hpp"
#include "commands.hpp"
#include "shipd_version.hpp"

int main(int argc, char** argv) {
    using namespace ship::ctl;
    Invocation inv;
    try {
        inv = parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
    } catch (const CliError& e) {
        std::cerr << "shipctl: " << e.what() << "\nRun `shipctl --help` for the commands and options.\n";
        return e.exit_code();
    }
    try {
        if (inv.version) {
            std::cout << "shipctl " << SHIPD_VERSION << '\n';
            return exit_ok;
        }
        const CommandSpec* spec = find_command(inv.command);
        if (inv.command == "help" && !inv.args.empty()) {
            spec = find_command(inv.args[0]);
            if (!spec) throw CliError(exit_usage, "unknown command '" + inv.args[0] + "'");
        } else if (inv.command == "help") {
            spec = nullptr;
        }
        if (inv.help || inv.command == "help") {
            std::cout << (spec ? command_help(*spec) : general_help());
            return exit_ok;
        }
        return run_command(inv);
    } catch (const CliError& e) {
        std::cerr << "shipctl: " << e.what() << '\n';
        return e.exit_code();
    } catch (const sdbus::Error& e) {
        std::cerr << "shipctl: D-Bus error " << e.getName() << ": " << e.getMessage() << '\n';
        return exit_failure;
    } catch (const std::exception& e) {
        std::cerr << "shipctl: " << e.what() << '\n';
        return exit_failure;
    }
}
