// libwebsockets' own log lines go to spdlog (logger default, prefixed "lws:") one level lower than lws rates
// them: lws calls many peer-caused events errors, which for a daemon facing the network they are not.
#pragma once

namespace ship::net {

// Process-wide (lws has one log sink). Enables the lws levels that spdlog's current level would show.
void route_lws_log_to_spdlog();

} // namespace ship::net
