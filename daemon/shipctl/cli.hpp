// shipctl's command line: which bus, which command, its arguments, and how to print; options may stand
// anywhere. A bad command line is a CliError with exit code 2; help texts live here, one per command.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ship::ctl {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1; // shipd refused, is not there, or a wait ran out
inline constexpr int exit_usage = 2;   // the command line is wrong, including a SKI that names no one peer

// A message for the user, already saying what to do, and the exit code that goes with it.
class CliError : public std::runtime_error {
public:
    CliError(int exit_code, const std::string& message)
        : std::runtime_error(message)
        , exit_code_(exit_code) {}
    int exit_code() const { return exit_code_; }

private:
    int exit_code_;
};

enum class BusKind { system, session, address };

struct Invocation {
    std::string command;           // empty with --help/--version alone
    std::vector<std::string> args; // positional arguments after the command
    bool json = false;
    bool help = false;
    bool version = false;
    BusKind bus = BusKind::system;
    std::string bus_address;
    double wait_seconds = 0; // how long to wait for shipd to appear, and for `connect` to complete
};

// Parses argv[1..]; throws CliError(exit_usage) naming the bad option or argument.
Invocation parse_command_line(const std::vector<std::string>& argv);

struct CommandSpec {
    std::string_view name;
    std::string_view synopsis; // arguments after the name
    std::string_view summary;  // one line
    std::string_view details;  // paragraph for `shipctl CMD --help`
    std::size_t min_args, max_args;
};

const std::vector<CommandSpec>& commands();
const CommandSpec* find_command(std::string_view name);

std::string general_help();
std::string command_help(const CommandSpec& command);

// "the system bus", "the session bus", "the bus at ADDR" — for messages.
std::string bus_label(const Invocation& inv);

} // namespace ship::ctl
