// What the registry holds for one connection: its peer SKI, direction, and an alive flag that turns false
// exactly once, when its close starts; close() therefore runs the real close at most once, whoever calls it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "hub/double_connection.hpp"

namespace ship::hub {

// Reason text of the WebSocket close (code ship::close_code_ship) for a connection that lost SHIP 12.2.2.
inline constexpr std::string_view double_connection_reason = "double connection";

// Strand-confined like everything in the hub. Implementations (the hub's wrapper around a transport and a
// ship::Connection) provide in_data_exchange() and do_close().
class ConnectionHandle {
public:
    ConnectionHandle(std::string ski, Direction direction);
    virtual ~ConnectionHandle() = default;
    ConnectionHandle(const ConnectionHandle&) = delete;
    ConnectionHandle& operator=(const ConnectionHandle&) = delete;

    const std::string& ski() const noexcept { return ski_; }
    Direction direction() const noexcept { return direction_; }

    // False from the moment its close started (by us, by the peer, or by a transport error). A connection
    // that is not alive counts as absent everywhere in the registry.
    bool alive() const noexcept { return alive_; }

    // Records that the close has started. True only for the first call: that caller owns the close. The
    // hub calls this when the peer or the transport ends the connection, so nobody closes it again.
    bool begin_close() noexcept;

    // Starts the close if nobody has yet: in data exchange SHIP connectionClose (announce), before it the
    // WebSocket close with `code` and `reason`. Returns whether this call started it.
    bool close(std::uint16_t code, std::string_view reason);
    // The daemon stops: as close(), but nothing waits for the peer's answer (ship::Connection::leave).
    // Unlike close(), it also cuts short a close already under way.
    void leave(std::string_view reason);

    virtual bool in_data_exchange() const = 0;
    // Which link carries it: unique among the connections of a node (the hub's table is keyed by it).
    virtual std::uint64_t id() const = 0;

protected:
    // Runs at most once per connection, from close().
    virtual void do_close(std::uint16_t code, std::string_view reason) = 0;
    // From leave(); `closing` says a close had already started. By default an ordinary close.
    virtual void do_leave(std::string_view reason, bool closing);

private:
    std::string ski_;
    Direction direction_;
    bool alive_ = true;
};

// The close a connection gets when it loses the double-connection rule (ship-protocol.md §5).
bool close_as_double_connection(ConnectionHandle& connection);

} // namespace ship::hub
