#include "hub/connection_handle.hpp"

#include <utility>

#include "ship/connection.hpp"

namespace ship::hub {

ConnectionHandle::ConnectionHandle(std::string ski, Direction direction)
    : ski_(std::move(ski))
    , direction_(direction) {}

bool ConnectionHandle::begin_close() noexcept {
    return std::exchange(alive_, false);
}

bool ConnectionHandle::close(std::uint16_t code, std::string_view reason) {
    if (!begin_close()) return false;
    do_close(code, reason);
    return true;
}

void ConnectionHandle::do_leave(std::string_view reason, bool closing) {
    if (!closing) do_close(ship::close_code_ship, reason);
}

void ConnectionHandle::leave(std::string_view reason) {
    do_leave(reason, !begin_close());
}

bool close_as_double_connection(ConnectionHandle& connection) {
    return connection.close(ship::close_code_ship, double_connection_reason);
}

} // namespace ship::hub
