// shipctl's pairing commands: `pending` (requests waiting, with time left), `agent` (answers requests
// interactively, y/n, as bluetoothctl's agent does), `block`/`unblock` SKI, `info` SKI (every property).
#pragma once

#include <string_view>

#include "cli.hpp"

namespace ship::ctl {

class HubClient;

bool is_pairing_command(std::string_view command);
// Runs one of them; refusals and usage errors are thrown as CliError like the other commands'.
int run_pairing_command(HubClient& client, const Invocation& inv);

} // namespace ship::ctl
