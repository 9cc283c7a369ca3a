// What the D-Bus objects of shipd share: the hub they serve, the daemon's stop, and whether signals may leave
// yet (not before org.shipd.Hub1 is ours, never after stop).
#pragma once

#include <functional>
#include <optional>
#include <set>
#include <stop_token>
#include <string>

#include "hub/hub_api.hpp"

namespace ship::hub {
class PairingApi;
}

namespace ship::daemon {

class AgentManager;
class ShipPairing;

inline constexpr const char* dbus_service_name = "org.shipd.Hub1";
inline constexpr const char* dbus_hub_path = "/org/shipd/Hub1";

// Loop thread only.
struct BusContext {
    ship::hub::HubApi& hub;
    std::stop_token stop;
    std::string version;
    std::optional<std::string> qr_code; // set by a reload; wins over the hub's start-up text
    // No signal before org.shipd.Hub1 is ours: one sent from our unique name alone reaches no app (they
    // match on the well-known name), so a PeerConnected would be lost and the app's first word on that SKI
    // would be PeerDisconnected.
    bool serving = false;
    // Pairing (issue 15); null where the hub offers none (the D-Bus tests' fake hub) or mDNS is off.
    ship::hub::PairingApi* pairing = nullptr;
    AgentManager* agents = nullptr;
    ShipPairing* pairing_service = nullptr;

    // Method replies waiting for something (the disk): each is answered ShuttingDown when the service
    // closes, so no call is left without a reply when the connection goes.
    std::set<std::function<void()>*> waiting_replies;

    bool stopping() const { return stop.stop_requested(); }
    bool may_emit() const { return serving && !stopping(); }
};

} // namespace ship::daemon
