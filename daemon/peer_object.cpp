#include "peer_object.hpp"

#include "deferred_reply.hpp"

namespace ship::daemon {

PeerObject::PeerObject(sdbus::IConnection& connection, BusContext& context, ship::hub::PeerInfo info)
    : AdaptorInterfaces(connection, dbus_peer_path_prefix + info.ski)
    , context_(context)
    , info_(info)
    , announced_(std::move(info)) {
    registerAdaptor();
}

PeerObject::~PeerObject() {
    unregisterAdaptor();
}

bool PeerObject::update(ship::hub::PeerInfo info) {
    info.ski = info_.ski; // the object path names it; it cannot change
    info_ = std::move(info);
    return !differences().empty();
}

std::vector<std::string> PeerObject::take_changes() {
    auto changed = differences();
    announced_ = info_;
    return changed;
}

std::vector<std::string> PeerObject::differences() const {
    using ship::hub::PeerInfo;
    std::vector<std::string> changed;
    const auto note = [&](bool differs, const char* name) {
        if (differs) changed.emplace_back(name);
    };
    const PeerInfo& a = announced_;
    const PeerInfo& b = info_;
    note(a.ship_id != b.ship_id, "ShipID");
    note(a.state != b.state, "State");
    note(a.error != b.error, "Error");
    note(a.trusted != b.trusted, "Trusted");
    note(a.connected != b.connected, "Connected");
    note(a.brand != b.brand, "Brand");
    note(a.model != b.model, "Model");
    note(a.type != b.type, "Type");
    note(a.host != b.host, "Host");
    note(a.port != b.port, "Port");
    note(a.connected_since_us != b.connected_since_us, "ConnectedSince");
    note(a.messages_in != b.messages_in, "MessagesIn");
    note(a.messages_out != b.messages_out, "MessagesOut");
    note(a.bytes_in != b.bytes_in, "BytesIn");
    note(a.bytes_out != b.bytes_out, "BytesOut");
    note(a.last_error != b.last_error, "LastError");
    note(a.last_error_time_us != b.last_error_time_us, "LastErrorTime");
    return changed;
}

void PeerObject::Trust(sdbus::Result<>&& result) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    auto& context = context_; // the call may end this object's life (the peer is forgotten)
    const std::string ski = info_.ski;
    answer_when_persisted(context, std::move(result), context.hub.trust(ski));
}

void PeerObject::Untrust(sdbus::Result<>&& result) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    auto& context = context_; // the call may end this object's life (the peer is forgotten)
    const std::string ski = info_.ski;
    answer_when_persisted(context, std::move(result), context.hub.untrust(ski));
}

void PeerObject::Connect(sdbus::Result<>&& result) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    answer_connect(context_, std::move(result), info_.ski, "", 0);
}

void PeerObject::Disconnect(sdbus::Result<>&& result, std::string reason) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    answer_now(std::move(result), context_.hub.disconnect(info_.ski, reason));
}

void PeerObject::SendData(sdbus::Result<>&& result, std::string json) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    answer_now(std::move(result), context_.hub.send_data(info_.ski, json));
}

void PeerObject::CancelPairing(sdbus::Result<>&& result) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    auto& context = context_; // the call may end this object's life (the peer is forgotten)
    const std::string ski = info_.ski;
    answer_when_persisted(context, std::move(result), context.hub.cancel_pairing(ski));
}

void PeerObject::Blocked(const bool& value) {
    if (!set_blocked_)
        throw sdbus::Error("org.shipd.Hub1.Error.InvalidArgument", "Blocked cannot be set in this shipd");
    set_blocked_(info_.ski, value);
}

} // namespace ship::daemon
