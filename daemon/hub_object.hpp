// The org.shipd.Hub1 object on /org/shipd/Hub1 (with ObjectManager and Properties): every method calls the
// hub directly on the loop and answers at once; after stop every call is answered ShuttingDown.
#pragma once

#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "bus_context.hpp"
#include "hub1_adaptor.hpp"

namespace ship::daemon {

// Loop thread only.
class HubObject final
    : public sdbus::AdaptorInterfaces<org::shipd::Hub1_adaptor, sdbus::ObjectManager_adaptor,
                                      sdbus::Properties_adaptor> {
public:
    HubObject(sdbus::IConnection& connection, BusContext& context);
    ~HubObject();
    HubObject(const HubObject&) = delete;
    HubObject& operator=(const HubObject&) = delete;

    // Re-reads the hub's properties and announces what changed since the last call (the listening port
    // once known, a setting the hub changed by itself, QRCode after a reload).
    void announce_property_changes();

private:
    using PeerEntry = sdbus::Struct<std::string, std::string, std::string, bool, bool>;
    using DiscoveredEntry = sdbus::Struct<std::string, std::string, std::string, std::string, std::string,
                                          std::string, std::uint16_t>;
    struct Announced {
        std::uint16_t port = 0;
        std::string qr_code;
        bool auto_accept = false, wait_for_trust = true;
        std::vector<std::string> listen_addresses;
        std::uint32_t pairing_timeout = 0;
        std::uint64_t pairing_window = 0, pairing_result_time = 0;
    };
    Announced current() const;
    void add_pairing(Announced& now) const; // the pairing properties' part of current()

    void ListPeers(sdbus::Result<std::vector<PeerEntry>>&& result) override;
    void ListDiscovered(sdbus::Result<std::vector<DiscoveredEntry>>&& result) override;
    void Trust(sdbus::Result<>&& result, std::string ski) override;
    void Untrust(sdbus::Result<>&& result, std::string ski) override;
    void Connect(sdbus::Result<>&& result, std::string ski, std::string host, std::uint16_t port) override;
    void Disconnect(sdbus::Result<>&& result, std::string ski, std::string reason) override;
    void CancelPairing(sdbus::Result<>&& result, std::string ski) override;
    void SendData(sdbus::Result<>&& result, std::string ski, std::string json) override;

    std::string LocalSKI() override;
    std::string ShipID() override;
    std::uint16_t Port() override;
    std::string Version() override;
    std::vector<std::string> ListenAddresses() override;
    std::string QRCode() override;
    bool AutoAccept() override;
    void AutoAccept(const bool& value) override;
    bool WaitForTrust() override;
    void WaitForTrust(const bool& value) override;

    // Pairing (daemon/hub_object_pairing.cpp)
    void RegisterAgent(sdbus::Result<>&& result, sdbus::ObjectPath path) override;
    void UnregisterAgent(sdbus::Result<>&& result, sdbus::ObjectPath path) override;
    void Block(sdbus::Result<>&& result, std::string ski) override;
    void Unblock(sdbus::Result<>&& result, std::string ski) override;
    void OpenPairingWindow(sdbus::Result<>&& result, std::uint32_t seconds) override;
    void ClosePairingWindow(sdbus::Result<>&& result) override;
    void RequestPairing(sdbus::Result<>&& result, std::string qr) override;
    void StopPairingRequest(sdbus::Result<>&& result) override;
    std::uint32_t PairingTimeout() override;
    void PairingTimeout(const std::uint32_t& value) override;
    std::uint64_t PairingWindow() override;
    sdbus::Struct<std::string, std::string, std::string, std::uint64_t> PairingServiceResult() override;

    BusContext& context_;
    Announced announced_;
};

} // namespace ship::daemon
