// Accepting: an incoming link admitted, refused, or held back; a new connection offered to the registry.
#include "hub/hub_internal.hpp"
#include "util/log_context.hpp"

namespace ship::hub {

net::Admission Hub::admit(const std::shared_ptr<net::Link>& link) {
    if (stopping_) return net::Admission::refuse("shutting down");
    const std::string& ski = link->peer_ski();
    const util::LogScope scope(ski); // what follows decides about this one peer
    // Normally refused inside TLS already (refuse_in_tls); a block set during its handshake lands here.
    if (trust_.is_blocked(ski)) return net::Admission::refuse("SHIP: this SKI is blocked", 403);
    // Untrusted peers have a budget of their own and never count below: they cannot keep a trusted one out.
    if (untrusted_peer(*link)) {
        if (auto refused = admit_untrusted(link)) return *refused;
    } else if (trusted_connections() >= config_.max_connections) {
        spdlog::warn("refused SHIP connection from {} ({}): {} connections is the limit",
                     link->remote_address(), short_ski(ski), config_.max_connections);
        return net::Admission::refuse("too many connections");
    } else if (trusted_handshakes() >= config_.max_handshakes) {
        spdlog::warn("refused SHIP connection from {} ({}): {} handshakes in progress is the limit",
                     link->remote_address(), short_ski(ski), config_.max_handshakes);
        return net::Admission::refuse("too many SHIP handshakes in progress");
    }
    auto* registered = owner_of(ski);
    if (registered && registered->in_data_exchange()) {
        // Never replaced by one that is not further along; refused before the upgrade, so no stack counts it
        // as a connection. A peer that rebooted dials again while its old link still looks open here: that
        // one must answer a ping at once, or it is dropped and the peer's next dial gets through.
        spdlog::info("refused SHIP connection from {} ({}): double connection, the one in data exchange is "
                     "kept; asking it for a sign of life",
                     link->remote_address(), short_ski(ski));
        registered->probe(config_.probe_bound);
        return net::Admission::refuse("double connection");
    }
    if (registered || scheduler_.is_dialling(ski) || has_contending(ski)) {
        // Two links to one peer: decide now only if the peer's rule lets us (a sure loser is refused before
        // the upgrade); otherwise hold this one, unbuilt, while the peer's own decision can still come.
        const auto verdict =
            judge(config_.local_ski, ski, config_.rule, rules_.learned(ski),
                  contest_view(ski, ContestLink{link->id(), Direction::incoming, timers_.now(), false}),
                  timers_.now(), contest_times_);
        if ((verdict.kind == Judgement::Kind::keep_link && verdict.link != link->id()) ||
            verdict.kind == Judgement::Kind::keep_dial) {
            spdlog::info("refused SHIP connection from {} ({}): double connection, {}",
                         link->remote_address(), short_ski(ski), verdict.why);
            if (doubts_.contains(ski)) contest(ski);
            return net::Admission::refuse("double connection");
        }
        spdlog::info("SHIP {} incoming: double connection ({}); holding it back", short_ski(ski),
                     verdict.kind == Judgement::Kind::wait ? verdict.why : "it wins once upgraded");
        auto held = hold_contending(link, Direction::incoming);
        return net::Admission::accept(*held);
    }
    auto connection = offer(link, Direction::incoming, {}, false);
    if (!connection) return net::Admission::refuse(stopping_ ? "shutting down" : "double connection");
    return net::Admission::accept(*connection);
}

std::shared_ptr<PeerConnection> Hub::offer(const std::shared_ptr<net::Link>& link, Direction direction,
                                           std::vector<std::vector<std::uint8_t>> early, bool wait_over,
                                           std::optional<SteadyTime> arrived) {
    const std::string ski = link->peer_ski();
    const util::LogScope scope(ski);
    std::shared_ptr<PeerConnection> built;
    auto result = registry_.swap(
        ski, direction,
        [&]() -> Registry::Handle {
            PeerConnectionOwner& owner = *this;
            built =
                std::make_shared<PeerConnection>(closing_timers_, owner, link, direction, sme_config(ski));
            if (arrived) built->set_arrived(*arrived);
            return built;
        },
        wait_over);
    if (result.stopping || result.decision == Decision::keep_existing) {
        if (link->is_open()) {
            // Exactly one owner closes the loser: this holder, until the close is reported.
            auto closing = std::make_shared<HeldLink>(*this, link, direction);
            link->set_handler(closing.get());
            held_links_[link->id()] = closing;
            link->close(ship::close_code_ship, result.stopping ? "shutting down" : double_connection_reason);
        }
        return nullptr;
    }
    if (result.decision == Decision::defer) {
        // The peer (larger SKI) decides: held like any double connection, judged on the next turn.
        spdlog::info("SHIP {} {}: double connection, the peer has the larger SKI; holding this one back",
                     short_ski(ski), to_string(direction));
        auto held = hold_contending(link, direction);
        held->early = std::move(early);
        if (arrived) held->arrived = *arrived;
        timers_.schedule(std::chrono::milliseconds(0), [this, ski] { contest(ski); });
        return nullptr;
    }
    connections_[link->id()] = built;
    handshaking_ids_.insert(link->id());
    pairing_registered(*built);
    spdlog::info("SHIP {} {} from {} registered{}", short_ski(ski), to_string(direction),
                 link->remote_address(), result.evicted ? " (replaces the previous connection)" : "");
    if (result.lost_connected) {
        auto& rec = record(ski);
        rec.connected = false;
        rec.connected_since_us = 0;
        if (events_) events_->peer_disconnected(ski, "replaced by a newer connection");
    }
    if (result.evicted) close_as_double_connection(*result.evicted);
    record(ski);
    publish(ski);
    if (link->is_open()) built->start(std::move(early));
    return built;
}

void Hub::held_ended(std::uint64_t link_id, const net::CloseInfo& info) {
    auto node = held_links_.extract(link_id);
    if (!node.empty() && node.mapped()->contending) {
        const auto& held = *node.mapped();
        const std::string ski = held.link->peer_ski();
        if (doubts_.contains(ski)) {
            learn_from_close(ski, held.direction, info, !held.early.empty());
            contest(ski);
        }
    }
    maybe_finish();
}

} // namespace ship::hub
