// The connection states SHIP reports to applications (ship-protocol §8); `to_string` gives the D-Bus names.
// The state machine maps its SHIP states onto these; the hub and D-Bus pass them on unchanged.
#pragma once

#include <string_view>

namespace ship {

enum class PeerState {
    none,
    queued,
    initiated,                // CMI
    received_pairing_request, // hello pending, waiting for the user's trust decision
    in_progress,
    trusted, // hello OK
    pin,
    completed,           // data exchange
    remote_denied_trust, // the peer aborted hello / closed while we waited READY
    error,
};

constexpr std::string_view to_string(PeerState state) {
    switch (state) {
    case PeerState::none:
        return "none";
    case PeerState::queued:
        return "queued";
    case PeerState::initiated:
        return "initiated";
    case PeerState::received_pairing_request:
        return "received-pairing-request";
    case PeerState::in_progress:
        return "in-progress";
    case PeerState::trusted:
        return "trusted";
    case PeerState::pin:
        return "pin";
    case PeerState::completed:
        return "completed";
    case PeerState::remote_denied_trust:
        return "remote-denied-trust";
    case PeerState::error:
        return "error";
    }
    return "error";
}

} // namespace ship
