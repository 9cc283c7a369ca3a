// What applications and admins ask (HubApi): trust, untrust, connect, disconnect, send data; arguments
// checked first, each refusal with its reason.
#include <utility>
#include <variant>

#include "hub/hub_internal.hpp"
#include "net/listen_address.hpp"
#include "ship/messages.hpp"
#include "ship/ski.hpp"

namespace ship::hub {

void Hub::set_auto_accept(bool on) {
    if (config_.auto_accept == on) return;
    config_.auto_accept = on;
    if (config_.on_auto_accept_changed) config_.on_auto_accept_changed(on);
    if (on) approve_all_pending("approved by AutoAccept");
}

namespace {
// Normalises a user-given SKI into `ski`, or says which value was wrong and why.
Result parse_ski(std::string_view input, std::string& ski) {
    if (auto n = ship::normalize_ski(input)) {
        ski = std::move(*n);
        return std::nullopt;
    }
    return error(ErrorCode::invalid_ski,
                 "'" + std::string(input) +
                     "' is not a SKI: expected 40 hexadecimal digits (spaces and '-' allowed)");
}
} // namespace

Result Hub::trust(std::string_view input) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    if (ski == config_.local_ski)
        return error(ErrorCode::invalid_argument, "SKI " + ski + " is this node's own");
    if (trust_.is_blocked(ski))
        return error(ErrorCode::blocked, "peer " + ski + " is blocked: unblock it first (Blocked = false)");
    trust_.trust(ski, peers_.contains(ski) ? peers_.at(ski).ship_id : std::string());
    pairing_.forgive(ski);
    spdlog::info("SHIP {}: trusted by the user", short_ski(ski));
    if (auto* c = pending_connection(ski)) approve_pending(*c, "approved by Trust");
    record(ski);
    publish(ski);
    scheduler_.request_now(ski);
    return std::nullopt;
}

Result Hub::untrust(std::string_view input) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    const bool was_trusted = trust_.is_trusted(ski);
    if (!was_trusted && !registry_.contains(ski))
        return error(ErrorCode::not_trusted, "peer " + ski + " is not trusted");
    trust_.untrust(ski);
    spdlog::info("SHIP {}: trust removed by the user", short_ski(ski));
    scheduler_.forget(ski);
    unproven_addresses_.erase(ski);
    connects_.finish(ski,
                     error(ErrorCode::not_trusted, "peer " + ski + " was untrusted before it connected"));
    if (auto* c = owner_of(ski)) c->remove_trust();
    end_doubt(ski);
    for (const auto& [id, h] : held_links_)
        if (h->contending && h->link->peer_ski() == ski) {
            h->contending = false;
            h->link->close(ship::close_code_trust_removed, "trust removed");
        }
    publish(ski);
    forget_if_unknown(ski);
    return std::nullopt;
}

Result Hub::connect(std::string_view input, std::string_view host, std::uint16_t port) {
    if (host.empty()) return error(ErrorCode::invalid_argument, "host is empty");
    return connect_and_report(input, host, port, {});
}

Result Hub::connect_and_report(std::string_view input, std::string_view host, std::uint16_t port,
                               ConnectDone done) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    if (!trust_.is_trusted(ski))
        return error(ErrorCode::not_trusted, "peer " + ski + " is not trusted: call Trust first");
    if (trust_.is_blocked(ski))
        return error(ErrorCode::blocked, "peer " + ski + " is blocked: unblock it first (Blocked = false)");
    std::optional<PeerAddress> asked;
    if (!host.empty() || port != 0) {
        if (host.empty()) return error(ErrorCode::invalid_argument, "host is empty");
        if (port == 0) return error(ErrorCode::invalid_argument, "port 0 is not a port to dial");
        asked = PeerAddress{std::string(host), port, "/ship/"};
    }
    if (registry_.is_connected(ski)) {
        // Already in data exchange: that is the outcome asked for (the given address is not dialled).
        if (done)
            timers_.schedule(std::chrono::milliseconds(0), [done = std::move(done)] { done(std::nullopt); });
        return std::nullopt;
    }
    if (!asked && !address_for(ski))
        return error(ErrorCode::invalid_argument,
                     "no address is known for peer " + ski + ": give one (org.shipd.Hub1.Connect)");
    spdlog::info("SHIP {}: connect requested{}", short_ski(ski),
                 asked ? " to " + net::display_listen_address(asked->host, asked->port) : std::string());
    connects_.add(ski, asked, std::move(done));
    record(ski);
    publish(ski);
    if (scheduler_.is_dialling(ski)) return std::nullopt; // its end (or success) decides what comes next
    scheduler_.request_now(ski);
    return std::nullopt;
}

Result Hub::disconnect(std::string_view input, std::string_view reason) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    auto owner = registry_.find(ski);
    if (!owner) return error(ErrorCode::not_connected, "peer " + ski + " is not connected");
    owner->close(ship::close_code_ship, reason.empty() ? "disconnected by the user" : reason);
    return std::nullopt;
}

Result Hub::cancel_pairing(std::string_view input) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    auto* c = owner_of(ski);
    const bool pending = c && c->awaiting_trust();
    if (!pending && !trust_.is_trusted(ski))
        return error(ErrorCode::unknown_peer, "no pairing with " + ski + " is pending");
    if (pending) deny_pending(*c, "denied by CancelPairing", true);
    if (trust_.is_trusted(ski)) {
        if (auto r = untrust(ski)) return r;
    }
    return std::nullopt;
}

Result Hub::send_data(std::string_view input, std::string_view json) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    // Checked (and converted) before the connection is looked at, so a bad message is reported as such.
    auto encoded = ship::msg::encode_spine_datagram(json);
    if (const auto* e = std::get_if<ship::msg::EncodeError>(&encoded))
        return error(ErrorCode::invalid_json, e->reason);
    auto* c = owner_of(ski);
    if (!c || !registry_.is_confirmed(ski) || !c->in_data_exchange())
        return error(ErrorCode::not_connected, "peer " + ski + " is not connected");
    if (auto e = c->send_data(std::move(std::get<ship::Bytes>(encoded)), json.size())) return e;
    publish(ski); // MessagesOut, BytesOut
    return std::nullopt;
}

void Hub::when_persisted(std::function<void(Result)> done) {
    trust_.when_durable([done = std::move(done)](const std::optional<std::string>& failure) {
        if (!failure) return done(std::nullopt);
        done(error(ErrorCode::invalid_argument, "could not store the change on disk: " + *failure));
    });
}

} // namespace ship::hub
