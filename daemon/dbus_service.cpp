#include "dbus_service.hpp"

#include <map>
#include <set>
#include <stdexcept>
#include <utility>

#include <sdbus-c++/sdbus-c++.h>
#include <spdlog/spdlog.h>

#include "agent.hpp"
#include "authorization.hpp"
#include "bus_connection.hpp"
#include "bus_context.hpp"
#include "dbus_errors.hpp"
#include "hub_object.hpp"
#include "peer_object.hpp"
#include "ship/ski.hpp"
#include "ship_pairing.hpp"

namespace ship::daemon {

using ship::hub::PeerInfo;

namespace {

std::unique_ptr<sdbus::IConnection> open_connection(const DbusServiceConfig& config) {
    switch (config.bus) {
    case BusKind::system:
        return sdbus::createSystemBusConnection();
    case BusKind::session:
        return sdbus::createSessionBusConnection();
    case BusKind::address:
        return sdbus::createSessionBusConnectionWithAddress(config.bus_address);
    }
    throw std::logic_error("unknown bus kind");
}

constexpr const char* peer_interface = "org.shipd.Hub1.Peer";

} // namespace

struct DbusService::Impl {
    Impl(net::EventLoop& loop, DbusServiceConfig config_in, ship::hub::HubApi& hub, std::stop_token stop)
        : config(std::move(config_in))
        , context{hub, std::move(stop), config.version, std::nullopt, false, config.pairing, nullptr, nullptr,
                  {}}
        , bus(loop, open_connection(config),
              [this](const std::string& why) {
                  if (config.on_bus_failure) config.on_bus_failure(why);
              })
        , hub_object(std::make_unique<HubObject>(bus.connection(), context))
        , gate(std::make_unique<AuthorizationGate>(bus.connection(), context)) {
        bus.before_wait([this] { flush_peer_changes(); });
        if (config.pairing) {
            agents = std::make_unique<AgentManager>(bus.connection(), *config.pairing);
            context.agents = agents.get();
        }
    }

    // The hub's pairing events: requests to the agents, adopted certificates to the Pairing Service.
    struct PairingForward final : ship::hub::PairingEvents {
        explicit PairingForward(Impl& i)
            : impl(i) {}
        void pairing_requested(const ship::hub::PairingRequest& r) override {
            if (impl.agents) impl.agents->pairing_requested(r);
        }
        void pairing_ended(const ship::hub::PairingRequest& r, const std::string& reason) override {
            if (impl.agents) impl.agents->pairing_ended(r, reason);
        }
        void certificate_trusted(const std::string& fingerprint, const std::string& ski) override {
            if (impl.context.pairing_service)
                impl.context.pairing_service->certificate_trusted(fingerprint, ski);
        }
        Impl& impl;
    };

    ~Impl() {
        give_up_waiting_replies(); // they refer to `context`, which goes now
        // Quietly: objects vanish with the connection; after stop no InterfacesRemoved is owed.
        peers.clear();
        gone.clear();
        agents.reset();
        hub_object.reset();
    }

    // Replies still waiting (for the disk) are answered ShuttingDown: after the connection (or this service)
    // is gone nobody could answer them.
    void give_up_waiting_replies() {
        const auto waiting = context.waiting_replies;
        for (auto* give_up : waiting)
            (*give_up)();
    }

    template <typename Emit>
    void emit(Emit&& send) {
        if (!context.may_emit()) return;
        try {
            send();
        } catch (const std::exception& e) {
            spdlog::warn("D-Bus: could not emit a signal: {}", e.what());
        }
    }

    void add_or_update_peer(const PeerInfo& peer) {
        if (!ship::is_canonical_ski(peer.ski)) {
            spdlog::error("D-Bus: the hub reported a peer with a malformed SKI '{}'; no object for it",
                          peer.ski);
            return;
        }
        const auto it = peers.find(peer.ski);
        if (it == peers.end()) {
            gone.erase(
                peer.ski); // back in the same turn: the old object goes now, the new one takes the path
            try {
                auto object = std::make_unique<PeerObject>(bus.connection(), context, peer);
                object->on_set_blocked([this](const std::string& ski, bool blocked) {
                    if (context.stopping()) throw shutting_down_error();
                    if (!context.pairing)
                        throw sdbus::Error("org.shipd.Hub1.Error.InvalidArgument",
                                           "Blocked cannot be set here");
                    if (auto e = context.pairing->set_blocked(ski, blocked)) throw to_dbus_error(*e);
                });
                auto& added = *object;
                peers.emplace(peer.ski, std::move(object));
                emit([&] { added.emitInterfacesAddedSignal(); });
            } catch (const std::exception& e) {
                spdlog::error("D-Bus: could not publish the object for SKI {}: {}", peer.ski, e.what());
            }
            return;
        }
        if (it->second->update(peer)) dirty.insert(peer.ski);
    }

    void remove_peer(const std::string& ski) {
        const auto it = peers.find(ski);
        if (it == peers.end()) return;
        dirty.erase(ski);
        // sd-bus lists the interfaces from the registered object, so announce before unregistering.
        emit([&] { it->second->emitInterfacesRemovedSignal(); });
        // Unregistered after this turn's dispatch: the removal may come from one of its own methods
        // (CancelPairing, Untrust), which must not see its object destroyed under it.
        gone[ski] = std::move(it->second);
        peers.erase(it);
    }

    // Once per loop turn: one PropertiesChanged per peer object that changed during the turn.
    void flush_peer_changes() {
        gone.clear();
        if (dirty.empty()) return;
        auto batch = std::exchange(dirty, {});
        for (const auto& ski : batch) {
            auto it = peers.find(ski);
            if (it == peers.end()) continue;
            if (!context.may_emit()) continue; // announced later: the object keeps what was last said
            const auto changed = it->second->take_changes();
            if (!changed.empty())
                emit([&] { it->second->emitPropertiesChangedSignal(peer_interface, changed); });
        }
    }

    DbusServiceConfig config;
    BusContext context;
    BusConnection bus; // before the objects: they unregister through it
    std::unique_ptr<HubObject> hub_object;
    std::unique_ptr<AgentManager> agents; // after the bus: its proxies and matches live on it
    PairingForward pairing_forward{*this};
    std::map<std::string, std::unique_ptr<PeerObject>> peers;
    std::map<std::string, std::unique_ptr<PeerObject>>
        gone;                                // removed this turn, unregistered before the wait
    std::set<std::string> dirty;             // peers whose properties changed this turn
    std::unique_ptr<AuthorizationGate> gate; // last: it goes first, while the connection is still there
};

DbusService::DbusService(net::EventLoop& loop, DbusServiceConfig config, ship::hub::HubApi& hub,
                         std::stop_token stop)
    : impl_(std::make_unique<Impl>(loop, std::move(config), hub, std::move(stop))) {}

DbusService::~DbusService() = default;

void DbusService::start() {
    auto& impl = *impl_;
    for (const auto& peer : impl.context.hub.list_peers())
        impl.add_or_update_peer(peer);
    // The name after the objects: whoever sees org.shipd.Hub1 appear finds them already there.
    impl.bus.connection().requestName(dbus_service_name);
    // Signals from here on; the peers that reached data exchange while the name was not ours are announced
    // now, in the same step, so per SKI an app still sees PeerConnected first and alternation holds.
    impl.context.serving = true;
    for (const auto& peer : impl.context.hub.list_peers())
        if (peer.connected) impl.emit([&] { impl.hub_object->emitPeerConnected(peer.ski); });
    impl.hub_object->announce_property_changes();
    spdlog::info("D-Bus: serving {} as {}", dbus_service_name, unique_name());
}

void DbusService::close(std::chrono::milliseconds timeout) {
    if (impl_->agents) impl_->agents->release_all(); // queued before the close flushes the connection
    impl_->give_up_waiting_replies();
    impl_->gate->shutdown();
    impl_->bus.close(dbus_service_name, timeout);
}

ship::hub::PairingEvents& DbusService::pairing_events() {
    return impl_->pairing_forward;
}

void DbusService::set_pairing_service(ShipPairing* service) {
    impl_->context.pairing_service = service;
    if (service) service->on_changed([impl = impl_.get()] { impl->hub_object->announce_property_changes(); });
    impl_->hub_object->announce_property_changes();
}

void DbusService::hub_properties_changed() {
    impl_->hub_object->announce_property_changes();
}

void DbusService::set_qr_code(std::string qr_code) {
    impl_->context.qr_code = std::move(qr_code);
    impl_->hub_object->announce_property_changes();
}

std::string DbusService::unique_name() const {
    return impl_->bus.connection().getUniqueName();
}

void DbusService::peer_connected(const std::string& ski) {
    impl_->emit([&] { impl_->hub_object->emitPeerConnected(ski); });
}

void DbusService::peer_disconnected(const std::string& ski, const std::string& reason) {
    impl_->emit([&] { impl_->hub_object->emitPeerDisconnected(ski, reason); });
}

void DbusService::peer_state_changed(const std::string& ski, ship::PeerState state,
                                     const std::string& error) {
    impl_->emit(
        [&] { impl_->hub_object->emitPeerStateChanged(ski, std::string(ship::to_string(state)), error); });
}

void DbusService::peer_ship_id_changed(const std::string& ski, const std::string& ship_id) {
    impl_->emit([&] { impl_->hub_object->emitPeerShipIDChanged(ski, ship_id); });
}

void DbusService::discovered_changed() {
    impl_->emit([&] { impl_->hub_object->emitDiscoveredChanged(); });
}

void DbusService::data_received(const std::string& ski, const std::string& json) {
    impl_->emit([&] { impl_->hub_object->emitDataReceived(ski, json); });
}

void DbusService::peer_added(const PeerInfo& peer) {
    impl_->add_or_update_peer(peer);
}

void DbusService::peer_changed(const PeerInfo& peer) {
    impl_->add_or_update_peer(peer);
}

void DbusService::peer_removed(const std::string& ski) {
    impl_->remove_peer(ski);
}

} // namespace ship::daemon
