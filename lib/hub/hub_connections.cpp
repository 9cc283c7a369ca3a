// The registered connections as they report (PeerConnectionOwner): state, SHIP ID, data exchange, data,
// end; ownership events only when the registry confirms the slot.
#include "hub/hub_internal.hpp"

namespace ship::hub {

ship::ConnectionConfig Hub::sme_config(const std::string& ski) const {
    ship::ConnectionConfig c;
    c.own_ship_id = config_.ship_id;
    c.peer_trusted = trust_.is_trusted(ski) || config_.auto_accept;
    c.allow_waiting_for_trust = config_.wait_for_trust;
    if (const auto* peer = trust_.find(ski); peer && !peer->ship_id.empty())
        c.known_peer_ship_id = peer->ship_id;
    c.timers = config_.ship_timers;
    return c;
}

bool Hub::is_owner(const PeerConnection& connection) const {
    return registry_.find(connection.ski()).get() == &connection;
}

PeerConnection* Hub::owner_of(const std::string& ski) const {
    auto owner = registry_.find(ski);
    if (!owner) return nullptr;
    auto it = connections_.find(owner->id());
    return it != connections_.end() && it->second.get() == owner.get() ? it->second.get() : nullptr;
}

void Hub::on_state(PeerConnection& connection, PeerState state, const std::string& error) {
    if (!is_owner(connection)) return;
    auto& rec = record(connection.ski());
    rec.state = state;
    rec.error = error;
    if (events_) events_->peer_state_changed(connection.ski(), state, error);
    publish(connection.ski());
    // The SME took the peer's trust when the connection was built: a Trust (or auto-accept) that came after
    // that but before hello found nothing pending to approve, and the hello now waits for a user who has
    // already said yes. Approve it, on a later turn rather than inside the SME's own run of actions.
    if (state == PeerState::received_pairing_request &&
        (trust_.is_trusted(connection.ski()) || config_.auto_accept))
        timers_.schedule(std::chrono::milliseconds(0), [this, ski = connection.ski(), id = connection.id()] {
            if (stopping_ || !(trust_.is_trusted(ski) || config_.auto_accept)) return;
            auto it = connections_.find(id);
            if (it == connections_.end() || !is_owner(*it->second) || !it->second->awaiting_trust()) return;
            spdlog::info("SHIP {}: trusted before its hello; approving it now", short_ski(ski));
            approve_pending(*it->second,
                            trust_.is_trusted(ski) ? "approved by Trust" : "approved by AutoAccept");
        });
    pairing_state(connection, state);
}

void Hub::on_ship_id(PeerConnection& connection, const std::string& ship_id) {
    if (!is_owner(connection)) return;
    const auto& ski = connection.ski();
    if (trust_.set_ship_id(ski, ship_id))
        trust_.when_durable([ski](const std::optional<std::string>& error) {
            if (error) spdlog::error("could not store the SHIP ID of {}: {}", short_ski(ski), *error);
        });
    auto& rec = record(ski);
    if (rec.ship_id == ship_id) return;
    rec.ship_id = ship_id;
    if (events_) events_->peer_ship_id_changed(ski, ship_id);
    publish(ski);
}

void Hub::on_completed(PeerConnection& connection) {
    const auto& ski = connection.ski();
    handshaking_ids_.erase(connection.id());
    if (!registry_.confirm_connected(ski, connection)) return;
    scheduler_.handshake_completed(ski);
    bool stored = false;
    if (!trust_.is_trusted(ski) && config_.auto_accept) {
        spdlog::info("SHIP {}: trusted by auto-accept", short_ski(ski));
        stored = trust_.trust(ski, record(ski).ship_id);
    }
    if (connection.dialled_address) stored = trust_.set_address(ski, *connection.dialled_address) || stored;
    unproven_addresses_.erase(ski);
    // The write runs on the disk writer; the strand goes on serving meanwhile.
    if (stored)
        trust_.when_durable([ski](const std::optional<std::string>& error) {
            if (error) spdlog::error("could not update the trust store for {}: {}", short_ski(ski), *error);
        });
    auto& rec = record(ski);
    rec.connected = true;
    rec.connected_since_us = now_us();
    spdlog::info("SHIP {} connected ({}, {})", short_ski(ski), to_string(connection.direction()),
                 connection.link().remote_address());
    if (events_) events_->peer_connected(ski);
    publish(ski);
    connects_.finish(ski, std::nullopt);
}

void Hub::on_data(PeerConnection& connection, const std::string& json) {
    if (!is_owner(connection)) return;
    if (events_) events_->data_received(connection.ski(), json);
    publish(connection.ski()); // MessagesIn, BytesIn (the D-Bus side sends one PropertiesChanged per turn)
}

void Hub::on_ended(PeerConnection& connection, const net::CloseInfo& info) {
    auto keep = connections_.extract(connection.id()); // `connection` lives until this function returns
    handshaking_ids_.erase(connection.id());
    const std::string ski = connection.ski();
    const std::string how = connection.end_description(describe(info));
    pairing_ended(connection, info);
    // At stop, one line per peer would be thousands; "stopping: closing N connection(s)" says it once.
    spdlog::log(stopping_ ? spdlog::level::debug : spdlog::level::info, "SHIP {} {} ended in {}: {}",
                short_ski(ski), to_string(connection.direction()), connection.ship_state(), how);
    const auto removal = registry_.remove_if_matches(ski, connection);
    if (removal.owned) {
        auto& rec = record(ski);
        if (removal.was_connected) {
            rec.connected = false;
            rec.connected_since_us = 0;
            if (events_) events_->peer_disconnected(ski, how);
        }
        const bool keep_state =
            connection.state() == PeerState::error || connection.state() == PeerState::remote_denied_trust;
        const PeerState next = keep_state ? connection.state() : PeerState::none;
        if (rec.state != next) {
            rec.state = next;
            rec.error = keep_state ? connection.error() : std::string();
            if (events_) events_->peer_state_changed(ski, rec.state, rec.error);
        }
        if (connection.state() == PeerState::error) {
            rec.last_error = connection.error();
            rec.last_error_time_us = now_us();
        }
        publish(ski);
        if (doubts_.contains(ski)) {
            learn_from_close(ski, connection.direction(), info, connection.peer_spoke());
            contest(ski);
        }
        // A Connect waiting for the handshake this dial of ours started learns how it ended.
        if (!stopping_ && !removal.was_connected && connects_.pending(ski) &&
            connection.direction() == Direction::outgoing) {
            const auto asked = connects_.address(ski);
            if (!asked || (connection.dialled_address && *connection.dialled_address == *asked)) {
                if (asked) unproven_addresses_[ski] = *asked;
                connects_.finish(ski, Error{ErrorCode::connect_failed,
                                            "the SHIP handshake with " + ski + " failed: " +
                                                (connection.error().empty() ? how : connection.error())});
            }
        }
        if (!stopping_ && trust_.is_trusted(ski) && !registry_.is_connected(ski)) {
            if (connects_.pending(ski))
                scheduler_.request_now(ski);
            else
                scheduler_.request(ski);
        }
        forget_if_unknown(ski);
    }
    maybe_finish();
}

std::optional<PeerAddress> Hub::address_for(const std::string& ski) const {
    auto candidates = dial_candidates(ski);
    if (candidates.empty()) return std::nullopt;
    return candidates.front();
}

} // namespace ship::hub
