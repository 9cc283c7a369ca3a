// The hub's D-Bus face: org.shipd.Hub1 on /org/shipd/Hub1 (with ObjectManager) and one org.shipd.Hub1.Peer
// object per known peer. Handlers never touch hub state: they post to the strand, which answers and emits.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "hub/hub_api.hpp"
#include "options.hpp"

namespace ship::daemon {

inline constexpr const char* dbus_service_name = "org.shipd.Hub1";
inline constexpr const char* dbus_hub_path = "/org/shipd/Hub1";
inline constexpr const char* dbus_peer_path_prefix = "/org/shipd/Hub1/peer/";

struct DbusServiceConfig {
    BusKind bus = BusKind::system;
    std::string bus_address; // BusKind::address only
    std::string version;     // the Version property
    // Hands a closure to the strand. May drop it when the strand is stopping: a method call it carried is
    // then answered ShuttingDown when the closure is destroyed, so no caller waits for the D-Bus timeout.
    std::function<void(std::function<void()>)> post;
    // Called once, from the bus thread, if the bus connection fails for good (dbus-daemon gone). Optional.
    std::function<void(const std::string& why)> on_bus_failure;
};

// Threads:
// - The bus thread is our own poll loop over the sdbus connection (getEventLoopPollData +
//   processPendingRequest), not enterEventLoopAsync: sd-bus writes a message from the sending thread and
//   queues the rest when the socket is full, and only a loop that re-polls for POLLOUT flushes that queue.
//   sdbus-c++'s own loop is not woken by a send from another thread; ours is (an eventfd kicked after every
//   reply and signal the strand sends), so a burst of DataReceived cannot stall in the queue.
// - Method handlers and property getters run on the bus thread. Methods post to the strand and are answered
//   from there (sdbus::Result is thread-safe). Getters read a snapshot the strand keeps current through
//   HubEvents; they never wait for the strand, because sdbus-c++ holds its connection mutex while a handler
//   runs, and a strand emitting a signal at that moment would wait for that same mutex.
// - HubEvents run on the strand and emit signals from it.
// Stop: once `stop` is requested no signal leaves any more (request_stop() returns only after an emission
// in flight has finished) and every method replies org.shipd.Hub1.Error.ShuttingDown.
// Lifetime: destroy the service after the strand has stopped running closures, and before the hub.
class DbusService final : public ship::hub::HubEvents {
public:
    // Connects to the bus and registers the hub object; nothing is reachable yet (no name, no loop).
    // Throws sdbus::Error when the bus cannot be reached.
    DbusService(DbusServiceConfig config, ship::hub::HubApi& hub, std::stop_token stop);
    ~DbusService() override;
    DbusService(const DbusService&) = delete;
    DbusService& operator=(const DbusService&) = delete;

    // Call from any thread but the strand, with the strand running: reads the hub's properties and peers on
    // the strand (waiting at most `timeout`), then requests org.shipd.Hub1 and starts the bus thread.
    // Throws sdbus::Error when the name is taken, std::runtime_error when the strand does not answer.
    void start(std::chrono::milliseconds timeout = std::chrono::seconds(10));

    // Strand: re-reads LocalSKI, ShipID, Port, QRCode, AutoAccept, WaitForTrust and announces what changed
    // (e.g. once the listening port is known, or after the hub changed a setting by itself).
    void hub_properties_changed();

    // Strand: the installation QR text after a reload changed brand, model, type, serial or categories (the
    // hub keeps the one it started with). Replaces what QRCode returns and announces it if it differs.
    void set_qr_code(std::string qr_code);

    // The connection's unique name (":1.42"), for logs and tests.
    std::string unique_name() const;

    // ship::hub::HubEvents — strand only.
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

// "org.shipd.Hub1.Error.InvalidSKI" etc.
std::string dbus_error_name(ship::hub::ErrorCode code);

} // namespace ship::daemon
