// The shipctl commands against a running shipd: each prints a table or sentence for people, or one JSON
// document with --json, and returns the exit code; refusals and usage errors are thrown as CliError.
#pragma once

#include "cli.hpp"

namespace ship::ctl {

// Runs inv.command (not `help`; main answers that without a bus).
int run_command(const Invocation& inv);

} // namespace ship::ctl
