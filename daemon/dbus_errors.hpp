// The D-Bus errors of org.shipd.Hub1 (org.shipd.Hub1.Error.<Name>): the hub's error codes by their D-Bus
// names, and the sdbus::Error a failed hub call becomes.
#pragma once

#include <string>

#include <sdbus-c++/Error.h>

#include "hub/hub_api.hpp"

namespace ship::daemon {

// "org.shipd.Hub1.Error.InvalidSKI" etc.
std::string dbus_error_name(ship::hub::ErrorCode code);

sdbus::Error to_dbus_error(const ship::hub::Error& error);
sdbus::Error shutting_down_error();

} // namespace ship::daemon
