// Which end of one connection we are: client = we dialled, server = we accepted. Per connection, never per
// node. Its own header so the transport (lib/net) and the protocol core (lib/ship) share it without
// depending on each other.
#pragma once

namespace ship {

enum class Role { client, server };

} // namespace ship
