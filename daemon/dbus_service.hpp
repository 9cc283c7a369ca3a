// The hub's D-Bus face on the event loop: org.shipd.Hub1 on /org/shipd/Hub1 and one org.shipd.Hub1.Peer
// object per known peer, fed by HubEvents. One thread: handlers, getters, signals all run on the loop.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "hub/hub_api.hpp"
#include "hub/pairing_api.hpp"
#include "net/event_loop.hpp"
#include "options.hpp"

namespace ship::daemon {

struct DbusServiceConfig {
    BusKind bus = BusKind::system;
    std::string bus_address; // BusKind::address only
    std::string version;     // the Version property
    // Called once, on the loop, if the bus connection fails for good (dbus-daemon gone). Optional.
    std::function<void(const std::string& why)> on_bus_failure;
    // The hub's pairing side: agents (RegisterAgent), Block, PairingTimeout, Peer.Blocked. Optional; without
    // it those members answer InvalidArgument.
    ship::hub::PairingApi* pairing = nullptr;
};

class ShipPairing;

// Loop thread only (the strand's loop), every member.
// Stop: once `stop` is requested no signal leaves any more and every method answers
// org.shipd.Hub1.Error.ShuttingDown; close() then gives the name up, answers what came in until then and
// flushes. PeerConnected/PeerDisconnected follow the hub's events one for one (the hub's alternation).
// PropertiesChanged of the peer objects are batched: one per object and loop turn, naming what changed.
class DbusService final : public ship::hub::HubEvents {
public:
    // Connects to the bus and registers the hub object; nothing is reachable yet (no name). Throws
    // sdbus::Error when the bus cannot be reached.
    DbusService(net::EventLoop& loop, DbusServiceConfig config, ship::hub::HubApi& hub, std::stop_token stop);
    ~DbusService() override;
    DbusService(const DbusService&) = delete;
    DbusService& operator=(const DbusService&) = delete;

    // Publishes the known peers, requests org.shipd.Hub1 and starts serving: signals from now on, and the
    // peers already connected are announced (PeerConnected) in the same step. Throws sdbus::Error when the
    // name is taken.
    void start();
    // After the strand has stopped: see the class comment. Bounded by `timeout`.
    void close(std::chrono::milliseconds timeout = std::chrono::milliseconds(500));

    // Re-reads LocalSKI, ShipID, Port, QRCode, AutoAccept, WaitForTrust and announces what changed.
    void hub_properties_changed();
    // The installation QR text after a reload changed brand, model, type, serial or categories (the hub
    // keeps the one it started with). Replaces what QRCode returns and announces it if it differs.
    void set_qr_code(std::string qr_code);

    // The connection's unique name (":1.42"), for logs and tests.
    std::string unique_name() const;

    // What the hub tells about pairing requests goes here (Hub::set_pairing_events): to the registered
    // agent, and the Pairing Service's adoptions to `set_pairing_service`'s object. Lives as long as this.
    ship::hub::PairingEvents& pairing_events();
    // The SHIP Pairing Service behind OpenPairingWindow/RequestPairing and their properties (optional).
    void set_pairing_service(ShipPairing* service);

    // ship::hub::HubEvents
    void peer_connected(const std::string& ski) override;
    void peer_disconnected(const std::string& ski, const std::string& reason) override;
    void peer_state_changed(const std::string& ski, ship::PeerState state, const std::string& error) override;
    void peer_ship_id_changed(const std::string& ski, const std::string& ship_id) override;
    void discovered_changed() override;
    void data_received(const std::string& ski, const std::string& json) override;
    void peer_added(const ship::hub::PeerInfo& peer) override;
    void peer_changed(const ship::hub::PeerInfo& peer) override;
    void peer_removed(const std::string& ski) override;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace ship::daemon
