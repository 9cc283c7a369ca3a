#include "dbus_errors.hpp"

namespace ship::daemon {

std::string dbus_error_name(ship::hub::ErrorCode code) {
    return "org.shipd.Hub1.Error." + std::string(ship::hub::to_string(code));
}

sdbus::Error to_dbus_error(const ship::hub::Error& error) {
    return sdbus::Error(dbus_error_name(error.code), error.message);
}

sdbus::Error shutting_down_error() {
    return sdbus::Error(dbus_error_name(ship::hub::ErrorCode::shutting_down), "shipd is shutting down");
}

} // namespace ship::daemon
