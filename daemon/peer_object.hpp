// One org.shipd.Hub1.Peer object, /org/shipd/Hub1/peer/<ski>: the hub's view of that peer as properties, and
// the hub's per-peer methods on it (BlueZ Device1 style). Updates land at once; PropertiesChanged says what.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "bus_context.hpp"
#include "hub/hub_api.hpp"
#include "hub1_adaptor.hpp"

namespace ship::daemon {

inline constexpr const char* dbus_peer_path_prefix = "/org/shipd/Hub1/peer/";

// Loop thread only.
class PeerObject final
    : public sdbus::AdaptorInterfaces<org::shipd::Hub1::Peer_adaptor, sdbus::Properties_adaptor,
                                      sdbus::ManagedObject_adaptor> {
public:
    PeerObject(sdbus::IConnection& connection, BusContext& context, ship::hub::PeerInfo info);
    ~PeerObject();
    PeerObject(const PeerObject&) = delete;
    PeerObject& operator=(const PeerObject&) = delete;

    // The hub's new view of the peer; true if it differs from what was last announced.
    bool update(ship::hub::PeerInfo info);
    // The properties whose value changed since the last call (or since the object was made).
    std::vector<std::string> take_changes();
    // Writing Blocked calls this (it throws sdbus::Error to refuse); unset, the property is read-only.
    void on_set_blocked(std::function<void(const std::string& ski, bool blocked)> handler) {
        set_blocked_ = std::move(handler);
    }

private:
    std::vector<std::string> differences() const;

    std::string SKI() override { return info_.ski; }
    std::string ShipID() override { return info_.ship_id; }
    std::string State() override { return std::string(ship::to_string(info_.state)); }
    std::string Error() override { return info_.error; }
    bool Trusted() override { return info_.trusted; }
    bool Connected() override { return info_.connected; }
    std::string Brand() override { return info_.brand; }
    std::string Model() override { return info_.model; }
    std::string Type() override { return info_.type; }
    std::string Host() override { return info_.host; }
    std::uint16_t Port() override { return info_.port; }
    std::uint64_t ConnectedSince() override { return info_.connected_since_us; }
    std::uint64_t MessagesIn() override { return info_.messages_in; }
    std::uint64_t MessagesOut() override { return info_.messages_out; }
    std::uint64_t BytesIn() override { return info_.bytes_in; }
    std::uint64_t BytesOut() override { return info_.bytes_out; }
    std::string LastError() override { return info_.last_error; }
    std::uint64_t LastErrorTime() override { return info_.last_error_time_us; }

    // The hub methods for this SKI; after stop each answers ShuttingDown.
    void Trust(sdbus::Result<>&& result) override;
    void Untrust(sdbus::Result<>&& result) override;
    void Connect(sdbus::Result<>&& result) override;
    void Disconnect(sdbus::Result<>&& result, std::string reason) override;
    void SendData(sdbus::Result<>&& result, std::string json) override;
    void CancelPairing(sdbus::Result<>&& result) override;

    std::uint64_t PairingDeadline() override { return info_.pairing_deadline_us; }
    bool Blocked() override { return info_.blocked; }
    void Blocked(const bool& value) override;

    BusContext& context_;

    std::function<void(const std::string&, bool)> set_blocked_;
    ship::hub::PeerInfo info_;      // what Get returns
    ship::hub::PeerInfo announced_; // what the last PropertiesChanged (or InterfacesAdded) said
};

} // namespace ship::daemon
