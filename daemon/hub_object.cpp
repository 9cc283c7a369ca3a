#include "hub_object.hpp"

#include <memory>
#include <optional>
#include <utility>

#include <spdlog/spdlog.h>

#include "dbus_errors.hpp"
#include "deferred_reply.hpp"

namespace ship::daemon {

HubObject::HubObject(sdbus::IConnection& connection, BusContext& context)
    : AdaptorInterfaces(connection, dbus_hub_path)
    , context_(context) {
    registerAdaptor();
    announced_ = current();
}

HubObject::~HubObject() {
    unregisterAdaptor();
}

HubObject::Announced HubObject::current() const {
    auto& hub = context_.hub;
    Announced now{hub.port(), context_.qr_code ? *context_.qr_code : hub.qr_code(), hub.auto_accept(),
                  hub.wait_for_trust(), hub.listen_addresses()};
    add_pairing(now);
    return now;
}

void HubObject::announce_property_changes() {
    const Announced now = current();
    std::vector<std::string> changed;
    // LocalSKI, ShipID and Version are announced as constant; Port may change once, QRCode on a reload.
    if (now.port != announced_.port) changed.emplace_back("Port");
    if (now.qr_code != announced_.qr_code) changed.emplace_back("QRCode");
    if (now.auto_accept != announced_.auto_accept) changed.emplace_back("AutoAccept");
    if (now.wait_for_trust != announced_.wait_for_trust) changed.emplace_back("WaitForTrust");
    if (now.listen_addresses != announced_.listen_addresses) changed.emplace_back("ListenAddresses");
    if (now.pairing_timeout != announced_.pairing_timeout) changed.emplace_back("PairingTimeout");
    if (now.pairing_window != announced_.pairing_window) changed.emplace_back("PairingWindow");
    if (now.pairing_result_time != announced_.pairing_result_time)
        changed.emplace_back("PairingServiceResult");
    if (changed.empty() || !context_.may_emit()) return;
    announced_ = now;
    emitPropertiesChangedSignal(org::shipd::Hub1_adaptor::INTERFACE_NAME, changed);
}

void HubObject::ListPeers(sdbus::Result<std::vector<PeerEntry>>&& result) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    std::vector<PeerEntry> entries;
    for (const auto& p : context_.hub.list_peers())
        entries.emplace_back(p.ski, p.ship_id, std::string(ship::to_string(p.state)), p.trusted, p.connected);
    result.returnResults(entries);
}

void HubObject::ListDiscovered(sdbus::Result<std::vector<DiscoveredEntry>>&& result) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    std::vector<DiscoveredEntry> entries;
    for (const auto& d : context_.hub.list_discovered())
        entries.emplace_back(d.ski, d.ship_id, d.brand, d.model, d.type, d.host, d.port);
    result.returnResults(entries);
}

void HubObject::Trust(sdbus::Result<>&& result, std::string ski) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    answer_when_persisted(context_, std::move(result), context_.hub.trust(ski));
}

void HubObject::Untrust(sdbus::Result<>&& result, std::string ski) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    answer_when_persisted(context_, std::move(result), context_.hub.untrust(ski));
}

void HubObject::Connect(sdbus::Result<>&& result, std::string ski, std::string host, std::uint16_t port) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    answer_connect(context_, std::move(result), ski, host, port);
}

void HubObject::Disconnect(sdbus::Result<>&& result, std::string ski, std::string reason) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    answer_now(std::move(result), context_.hub.disconnect(ski, reason));
}

void HubObject::CancelPairing(sdbus::Result<>&& result, std::string ski) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    answer_when_persisted(context_, std::move(result), context_.hub.cancel_pairing(ski));
}

void HubObject::SendData(sdbus::Result<>&& result, std::string ski, std::string json) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    answer_now(std::move(result), context_.hub.send_data(ski, json));
}

std::string HubObject::LocalSKI() {
    return context_.hub.local_ski();
}

std::string HubObject::ShipID() {
    return context_.hub.ship_id();
}

std::uint16_t HubObject::Port() {
    return context_.hub.port();
}

std::vector<std::string> HubObject::ListenAddresses() {
    return context_.hub.listen_addresses();
}

std::string HubObject::Version() {
    return context_.version;
}

std::string HubObject::QRCode() {
    return context_.qr_code ? *context_.qr_code : context_.hub.qr_code();
}

bool HubObject::AutoAccept() {
    return context_.hub.auto_accept();
}

void HubObject::AutoAccept(const bool& value) {
    if (context_.stopping()) throw shutting_down_error();
    context_.hub.set_auto_accept(value);
    spdlog::info("D-Bus: AutoAccept set to {}", context_.hub.auto_accept());
    announce_property_changes();
}

bool HubObject::WaitForTrust() {
    return context_.hub.wait_for_trust();
}

void HubObject::WaitForTrust(const bool& value) {
    if (context_.stopping()) throw shutting_down_error();
    context_.hub.set_wait_for_trust(value);
    spdlog::info("D-Bus: WaitForTrust set to {}", context_.hub.wait_for_trust());
    announce_property_changes();
}

} // namespace ship::daemon
