// The hub's side of pairing: untrusted connections in their own budget (PairingBook), their requests and
// deadlines, the quiet period after a denial, blocked SKIs refused inside TLS, and certificates the SHIP
// Pairing Service admitted. Kept apart from hub.cpp; everything here runs on the strand.
#include <spdlog/spdlog.h>

#include "hub/hub_internal.hpp"
#include "ship/ski.hpp"
#include "util/log_context.hpp"

namespace ship::hub {

namespace {

std::uint64_t wall_us(TimerService::Clock::time_point steady, TimerService::Clock::time_point steady_now) {
    using namespace std::chrono;
    const auto left = duration_cast<microseconds>(steady - steady_now);
    const auto at = system_clock::now() + left;
    return static_cast<std::uint64_t>(duration_cast<microseconds>(at.time_since_epoch()).count());
}

std::string gone_reason(const net::CloseInfo& info) {
    std::string text;
    switch (info.by) {
    case net::CloseInfo::By::peer:
        text = "the peer closed the connection";
        break;
    case net::CloseInfo::By::local:
        text = "the connection was closed";
        break;
    case net::CloseInfo::By::transport:
        text = "the connection was lost";
        break;
    }
    if (!info.reason.empty()) text += " (" + info.reason + ")";
    return text;
}

std::string burst_note(std::uint64_t unlogged) {
    return unlogged ? " (" + std::to_string(unlogged) + " more attempt(s) in its previous burst)"
                    : std::string();
}

} // namespace

// ------------------------------------------------------------------------------------------- admission

bool Hub::untrusted_peer(const net::Link& link) {
    const std::string& ski = link.peer_ski();
    if (trust_.is_trusted(ski) || config_.auto_accept) return false;
    // A certificate a verified Pairing Service announcement named: this first connection proves its SKI.
    const std::string& fingerprint = link.peer_fingerprint();
    auto it = fingerprint.empty() ? trusted_certificates_.end() : trusted_certificates_.find(fingerprint);
    if (it == trusted_certificates_.end()) return true;
    const std::string ship_id = it->second;
    trusted_certificates_.erase(it);
    trust_.trust(ski, ship_id);
    trust_.when_durable([ski](const std::optional<std::string>& failure) {
        if (failure) spdlog::error("could not store the trust of {}: {}", short_ski(ski), *failure);
    });
    spdlog::info("SHIP {}: certificate {} was admitted by the SHIP Pairing Service; SKI {} is trusted now",
                 short_ski(ski), fingerprint.substr(0, 16), ski);
    if (auto& rec = record(ski); rec.ship_id.empty()) rec.ship_id = ship_id;
    publish(ski);
    if (pairing_events_) pairing_events_->certificate_trusted(fingerprint, ski);
    return false;
}

std::optional<net::Admission> Hub::admit_untrusted(const std::shared_ptr<net::Link>& link) {
    const std::string& ski = link->peer_ski();
    if (pairing_.is_quiet(ski)) {
        if (auto unlogged = refused_log_.attempt("quiet " + ski, timers_.now()))
            spdlog::info("refused SHIP connection from {} ({}): its pairing was denied less than {} s ago{}",
                         link->remote_address(), short_ski(ski), pairing_.limits().quiet_period.count(),
                         burst_note(*unlogged));
        return net::Admission::refuse("SHIP: pairing with this node was denied recently; try again later",
                                      403);
    }
    const auto [host, port] = split_host_port(link->remote_address());
    for (const auto id : pairing_.make_room(host)) {
        const auto* entry = pairing_.find(id);
        spdlog::info("SHIP {}: dropping the oldest untrusted connection ({} from {}) for a newer one: {} "
                     "pending is the budget, {} per address",
                     short_ski(ski), entry ? short_ski(entry->ski) : std::string("?"),
                     entry ? entry->address : std::string("?"), pairing_.limits().max_pending,
                     pairing_.limits().max_pending_per_address);
        const std::string reason = "pairing request dropped for a newer one (too many pending)";
        end_request(id, reason);
        if (auto it = connections_.find(id); it != connections_.end()) {
            auto& c = *it->second;
            if (c.awaiting_trust())
                c.deny(reason);
            else
                c.close(ship::close_code_ship, reason);
        }
    }
    return std::nullopt;
}

std::optional<std::string> Hub::refuse_in_tls(const std::string& ski, const std::string& remote) {
    if (!trust_.is_blocked(ski)) return std::nullopt;
    const util::LogScope scope(ski);
    if (auto unlogged = refused_log_.attempt("blocked " + ski, timers_.now()))
        spdlog::warn("refused blocked SKI {} from {} inside TLS{}", ski, remote.empty() ? "?" : remote,
                     burst_note(*unlogged));
    return "SKI " + ski + " is blocked";
}

void Hub::pairing_registered(PeerConnection& connection) {
    const std::string& ski = connection.ski();
    if (auto it = expected_certificates_.find(ski);
        it != expected_certificates_.end() && connection.link().peer_fingerprint() != it->second) {
        spdlog::warn("SHIP {}: its certificate {} is not the one its QR text names ({}); closing",
                     short_ski(ski), connection.link().peer_fingerprint().substr(0, 16),
                     it->second.substr(0, 16));
        connection.close(ship::close_code_ship, "certificate fingerprint differs from the QR text");
        return;
    }
    if (connection.direction() != Direction::incoming || trust_.is_trusted(ski) || config_.auto_accept)
        return;
    untrusted_ids_.insert(connection.id());
    pairing_.add(connection.id(), ski, split_host_port(connection.link().remote_address()).first);
}

// ------------------------------------------------------------------------------------------- requests

void Hub::pairing_state(PeerConnection& connection, PeerState state) {
    const auto id = connection.id();
    if (state == PeerState::received_pairing_request) {
        // Trusted meanwhile (or auto-accept on): on_state approves it on the next turn; nobody is asked.
        if (trust_.is_trusted(connection.ski()) || config_.auto_accept) return;
        const auto* before = pairing_.find(id);
        if (!before || before->request != 0) return;
        const auto* entry = pairing_.ask(id);
        if (!entry) return;
        const std::string ski = entry->ski;
        const auto deadline = wall_us(entry->deadline, timers_.now());
        request_deadlines_us_[id] = deadline;
        record(ski).pairing_deadline_us = deadline;
        publish(ski);
        const auto request = request_of(*entry);
        spdlog::info("SHIP {}: pairing request {} from {} waits for a decision ({} s)", short_ski(ski),
                     request.id, request.host.empty() ? std::string("?") : request.host,
                     pairing_.limits().timeout.count());
        if (pairing_events_) pairing_events_->pairing_requested(request);
        return;
    }
    if (state == PeerState::error || state == PeerState::remote_denied_trust)
        end_request(id, connection.error().empty() ? std::string("the SHIP handshake failed")
                                                   : "the SHIP handshake failed: " + connection.error());
}

void Hub::pairing_ended(const PeerConnection& connection, const net::CloseInfo& info) {
    untrusted_ids_.erase(connection.id());
    end_request(connection.id(), gone_reason(info));
}

void Hub::pairing_expired(const PairingBook::Entry& entry) {
    const std::string reason = "pairing request expired: no decision within " +
                               std::to_string(pairing_.limits().timeout.count()) + " s";
    spdlog::info("SHIP {}: {}", short_ski(entry.ski), reason);
    finish_request(entry, reason);
    if (auto it = connections_.find(entry.connection);
        it != connections_.end() && it->second->awaiting_trust())
        it->second->deny(reason);
}

void Hub::end_request(std::uint64_t connection_id, const std::string& reason) {
    if (auto entry = pairing_.remove(connection_id)) finish_request(*entry, reason);
}

void Hub::finish_request(const PairingBook::Entry& entry, const std::string& reason) {
    if (entry.request == 0) return; // admitted, never asked (ended before its hello): nothing to tell
    const PairingRequest request = request_of(entry);
    request_deadlines_us_.erase(entry.connection);
    auto& rec = record(entry.ski);
    const auto* newer = pairing_.find_ski(entry.ski);
    const auto other = newer ? request_deadlines_us_.find(newer->connection) : request_deadlines_us_.end();
    rec.pairing_deadline_us = other == request_deadlines_us_.end() ? 0 : other->second;
    publish(entry.ski);
    spdlog::info("SHIP {}: pairing request {} ended: {}", short_ski(entry.ski), request.id, reason);
    if (pairing_events_) pairing_events_->pairing_ended(request, reason);
}

PairingRequest Hub::request_of(const PairingBook::Entry& entry) const {
    PairingRequest r;
    r.id = entry.request;
    r.ski = entry.ski;
    if (auto it = peers_.find(entry.ski); it != peers_.end()) {
        r.ship_id = it->second.ship_id;
        r.brand = it->second.brand;
        r.model = it->second.model;
        r.type = it->second.type;
    }
    if (auto it = connections_.find(entry.connection); it != connections_.end()) {
        auto [host, port] = split_host_port(it->second->link().remote_address());
        r.host = std::move(host);
        r.port = port;
    } else {
        r.host = entry.address;
    }
    if (auto it = request_deadlines_us_.find(entry.connection); it != request_deadlines_us_.end())
        r.deadline_us = it->second;
    return r;
}

std::vector<PairingRequest> Hub::pairing_requests() const {
    std::vector<PairingRequest> out;
    for (const auto& e : pairing_.entries())
        if (e.request != 0) out.push_back(request_of(e));
    return out;
}

PeerConnection* Hub::pending_connection(const std::string& ski) {
    auto* c = owner_of(ski);
    return c && c->awaiting_trust() ? c : nullptr;
}

void Hub::approve_pending(PeerConnection& connection, const std::string& reason) {
    end_request(connection.id(), reason);
    untrusted_ids_.erase(connection.id()); // trusted from now on: it counts like any trusted handshake
    connection.approve();
}

void Hub::deny_pending(PeerConnection& connection, const std::string& reason, bool quiet) {
    end_request(connection.id(), reason);
    if (quiet) pairing_.denied(connection.ski());
    connection.deny(reason);
}

void Hub::approve_all_pending(const std::string& reason) {
    for (const auto& e : pairing_.entries()) {
        auto it = connections_.find(e.connection);
        if (it == connections_.end()) continue;
        if (it->second->awaiting_trust()) {
            spdlog::info("SHIP {}: {}", short_ski(e.ski), reason);
            approve_pending(*it->second, reason);
        } else {
            // Not yet in hello: its hello finds auto-accept on and is approved then (on_state).
            pairing_.remove(e.connection);
            untrusted_ids_.erase(e.connection);
        }
    }
}

Result Hub::answer_pairing(std::uint64_t request, bool approve, std::string_view who) {
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    const auto* entry = pairing_.find_request(request);
    if (!entry)
        return error(ErrorCode::unknown_peer, "pairing request " + std::to_string(request) +
                                                  " is no longer waiting (decided, expired or gone)");
    const std::string ski = entry->ski;
    auto it = connections_.find(entry->connection);
    if (it == connections_.end() || !it->second->awaiting_trust()) {
        end_request(entry->connection, "its connection is no longer waiting");
        return error(ErrorCode::unknown_peer,
                     "pairing request " + std::to_string(request) + " is no longer waiting");
    }
    auto& connection = *it->second;
    const util::LogScope scope(ski);
    if (!approve) {
        spdlog::info("SHIP {}: pairing denied by {}", short_ski(ski), who);
        deny_pending(connection, "denied by " + std::string(who), true);
        return std::nullopt;
    }
    if (trust_.is_blocked(ski))
        return error(ErrorCode::blocked, "peer " + ski + " is blocked: unblock it first (Blocked = false)");
    trust_.trust(ski, peers_.contains(ski) ? peers_.at(ski).ship_id : std::string());
    trust_.when_durable([ski](const std::optional<std::string>& failure) {
        if (failure) spdlog::error("could not store the trust of {}: {}", short_ski(ski), *failure);
    });
    pairing_.forgive(ski);
    spdlog::info("SHIP {}: trusted by {}", short_ski(ski), who);
    approve_pending(connection, "approved by " + std::string(who));
    record(ski);
    publish(ski);
    return std::nullopt;
}

Result Hub::abandon_pairing(std::uint64_t request, std::string_view reason) {
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    const auto* entry = pairing_.find_request(request);
    if (!entry)
        return error(ErrorCode::unknown_peer,
                     "pairing request " + std::to_string(request) + " is not waiting");
    auto it = connections_.find(entry->connection);
    if (it == connections_.end() || !it->second->awaiting_trust()) {
        end_request(entry->connection, std::string(reason));
        return std::nullopt;
    }
    spdlog::info("SHIP {}: pairing request {} abandoned: {}", short_ski(entry->ski), request, reason);
    deny_pending(*it->second, std::string(reason), false);
    return std::nullopt;
}

Result Hub::set_pairing_timeout(std::chrono::seconds timeout) {
    if (timeout < std::chrono::seconds(1) || timeout > std::chrono::hours(24))
        return error(ErrorCode::invalid_argument,
                     "PairingTimeout " + std::to_string(timeout.count()) + " s is outside 1 s to 86400 s");
    pairing_.set_timeout(timeout);
    return std::nullopt;
}

// ------------------------------------------------------------------------------------------- blocking

Result Hub::set_blocked(std::string_view input, bool blocked) {
    auto canonical = ship::normalize_ski(input);
    if (!canonical)
        return error(ErrorCode::invalid_ski,
                     "'" + std::string(input) +
                         "' is not a SKI: expected 40 hexadecimal digits (spaces and '-' "
                         "allowed)");
    const std::string ski = *canonical;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    if (ski == config_.local_ski)
        return error(ErrorCode::invalid_argument, "SKI " + ski + " is this node's own");
    const util::LogScope scope(ski);
    if (trust_.set_blocked(ski, blocked))
        spdlog::info("SHIP {}: {} by the user", short_ski(ski), blocked ? "blocked" : "unblocked");
    if (blocked) {
        scheduler_.forget(ski);
        if (auto* c = pending_connection(ski)) {
            deny_pending(*c, "blocked by the user", false);
        } else if (auto owner = registry_.find(ski)) {
            owner->close(ship::close_code_ship, "blocked by the user");
        }
        close_held(ski, ship::close_code_ship, "blocked by the user");
    } else {
        refused_log_.attempt("blocked " + ski, {}); // a new block later starts a new burst at once
        if (trust_.is_trusted(ski)) scheduler_.request(ski);
    }
    record(ski);
    publish(ski);
    // On a later turn: this may run inside a property write on that very peer's D-Bus object, which must
    // not vanish under sd-bus while it dispatches to it.
    timers_.schedule(std::chrono::milliseconds(0), [this, ski] {
        if (!stopping_) forget_if_unknown(ski);
    });
    return std::nullopt;
}

// ------------------------------------------------------------------------------------------- certificates

void Hub::trust_certificate(std::string_view fingerprint, std::string_view ship_id) {
    std::string fp(fingerprint);
    for (auto& c : fp)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    trusted_certificates_[fp] = std::string(ship_id);
    // A connection of that device may already be waiting in hello (it dialled before we had evaluated it).
    for (auto& [id, connection] : connections_) {
        if (!connection->alive() || connection->link().peer_fingerprint() != fp) continue;
        if (!untrusted_peer(connection->link()) && connection->awaiting_trust())
            approve_pending(*connection, "approved by the SHIP Pairing Service");
        break;
    }
}

void Hub::expect_certificate(std::string_view ski, std::string_view fingerprint) {
    auto canonical = ship::normalize_ski(ski);
    if (!canonical) return;
    std::string fp(fingerprint);
    for (auto& c : fp)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (fp.empty())
        expected_certificates_.erase(*canonical);
    else
        expected_certificates_[*canonical] = fp;
}

// ------------------------------------------------------------------------------------------- budgets

std::size_t Hub::trusted_connections() const {
    return connections_.size() + held_links_.size() - untrusted_ids_.size();
}

std::size_t Hub::trusted_handshakes() {
    std::size_t n = 0;
    for (auto it = handshaking_ids_.begin(); it != handshaking_ids_.end();) {
        auto c = connections_.find(*it);
        if (c == connections_.end() || c->second->in_data_exchange()) { // past its handshake for good
            it = handshaking_ids_.erase(it);
            continue;
        }
        if (c->second->alive() && !untrusted_ids_.contains(*it)) ++n;
        ++it;
    }
    return n + held_links_.size();
}

} // namespace ship::hub
