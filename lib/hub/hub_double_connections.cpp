// Double connections (SHIP 12.2.2 and what installed stacks do): links held back while the peer may still
// decide, judged (peer_rules.hpp), and the rule a peer's close shows, learned.
#include "hub/hub_internal.hpp"
#include "util/log_context.hpp"

namespace ship::hub {

// connections

std::shared_ptr<Hub::HeldLink> Hub::hold_contending(const std::shared_ptr<net::Link>& link,
                                                    Direction direction) {
    auto held = std::make_shared<HeldLink>(*this, link, direction);
    held->contending = true;
    link->set_handler(held.get());
    held_links_[link->id()] = held;
    begin_doubt(link->peer_ski());
    return held;
}

bool Hub::has_contending(const std::string& ski) const {
    for (const auto& [id, h] : held_links_)
        if (h->contending && h->link->peer_ski() == ski) return true;
    return false;
}

void Hub::begin_doubt(const std::string& ski) {
    auto [it, fresh] = doubts_.try_emplace(ski, Doubt{timers_.now()});
    // The registered one waits too: it must not reach data exchange only to be dropped by the peer.
    if (auto* c = owner_of(ski); c && !c->in_data_exchange()) c->pause();
    if (fresh) {
        const auto learned = rules_.learned(ski);
        spdlog::info("SHIP {}: double connection; the peer's rule is {}", short_ski(ski),
                     learned ? std::string(to_string(*learned)) : std::string("not known yet"));
    }
}

void Hub::close_held(const std::string& ski, std::uint16_t code, std::string_view reason) {
    std::vector<std::shared_ptr<HeldLink>> held;
    for (const auto& [id, h] : held_links_)
        if (h->contending && h->link->peer_ski() == ski) held.push_back(h);
    for (auto& h : held) {
        h->contending = false; // a closing holder now, until its close is reported
        h->link->close(code, reason);
    }
    end_doubt(ski);
}

void Hub::end_doubt(const std::string& ski) {
    auto it = doubts_.find(ski);
    if (it == doubts_.end()) return;
    if (it->second.timer) timers_.cancel(it->second.timer);
    doubts_.erase(it);
}

Contest Hub::contest_view(const std::string& ski, std::optional<ContestLink> extra) const {
    Contest view;
    const auto doubt = doubts_.find(ski);
    view.since = doubt != doubts_.end() ? doubt->second.since : timers_.now();
    if (const auto* c = owner_of(ski))
        view.links.push_back({c->id(), c->direction(), c->arrived(), c->in_data_exchange()});
    for (const auto& [id, h] : held_links_)
        if (h->contending && h->link->peer_ski() == ski)
            view.links.push_back({id, h->direction, h->arrived, false});
    if (extra) view.links.push_back(*extra);
    view.dial_in_flight = scheduler_.is_dialling(ski);
    return view;
}

void Hub::contest(const std::string& ski) {
    auto doubt = doubts_.find(ski);
    if (doubt == doubts_.end() || stopping_) return;
    const util::LogScope scope(ski);
    const auto now = timers_.now();
    const auto learned = rules_.learned(ski);
    const auto view = contest_view(ski, std::nullopt);
    const auto verdict = judge(config_.local_ski, ski, config_.rule, learned, view, now, contest_times_);

    if (verdict.kind == Judgement::Kind::wait) {
        Doubt& d = doubt->second;
        if (d.timer && d.until == verdict.until) return;
        if (d.timer) timers_.cancel(d.timer);
        d.until = verdict.until;
        const auto delay = std::max(std::chrono::milliseconds(0),
                                    std::chrono::ceil<std::chrono::milliseconds>(verdict.until - now));
        d.timer = timers_.schedule(delay, [this, ski] {
            if (auto it = doubts_.find(ski); it != doubts_.end()) it->second.timer = 0;
            contest(ski);
        });
        return;
    }

    std::shared_ptr<HeldLink> winner;
    if (verdict.kind == Judgement::Kind::keep_link) {
        if (auto it = held_links_.find(verdict.link); it != held_links_.end()) {
            // Being admitted: it opens in a moment, and HeldLink::on_open judges again.
            if (!it->second->link->is_open()) return;
            winner = it->second;
        }
    }
    if (!learned && verdict.peer_waited && rules_.learn(ski, DoubleConnectionRule::spec, [this, ski] {
            trust_.when_durable([ski](const std::optional<std::string>& error) {
                if (error)
                    spdlog::error("could not store how {} settles double connections: {}", short_ski(ski),
                                  *error);
            });
        }))
        spdlog::info("SHIP {}: the peer left the double connection to us; taken as the spec rule",
                     short_ski(ski));
    end_doubt(ski);
    if (verdict.kind == Judgement::Kind::nothing) {
        // Every link went: dial again as after any lost connection (a dial in flight goes on).
        if (trust_.is_trusted(ski)) scheduler_.request(ski);
        return;
    }

    spdlog::info("SHIP {}: double connection settled: {} ({})", short_ski(ski),
                 verdict.kind == Judgement::Kind::keep_dial ? std::string("our dial in flight")
                 : winner ? std::string(to_string(winner->direction)) + " link (held back)"
                          : std::string("the registered link"),
                 verdict.why);
    // Losers first, so that the registry sees no alive owner when the winner is offered.
    if (auto owner = registry_.find(ski)) {
        auto* c = owner_of(ski);
        if (verdict.kind == Judgement::Kind::keep_link && !winner && c && c->id() == verdict.link)
            c->resume();
        else
            close_as_double_connection(*owner);
    }
    std::vector<std::shared_ptr<HeldLink>> losers;
    for (const auto& [id, h] : held_links_)
        if (h->contending && h->link->peer_ski() == ski && h != winner) losers.push_back(h);
    for (auto& h : losers) {
        h->contending = false; // a closing holder now, until its close is reported
        h->link->close(ship::close_code_ship, double_connection_reason);
    }
    if (verdict.kind == Judgement::Kind::keep_link && scheduler_.is_dialling(ski))
        scheduler_.cancel_dial(ski);
    if (!winner) return;
    held_links_.erase(winner->link->id());
    winner->contending = false;
    if (auto connection =
            offer(winner->link, winner->direction, std::move(winner->early), false, winner->arrived))
        connection->dialled_address = winner->dialled_address;
}

void Hub::learn_from_close(const std::string& ski, Direction closed, const net::CloseInfo& info,
                           bool peer_spoke) {
    if (info.by == net::CloseInfo::By::local) return; // our own decision says nothing about the peer's
    const Direction other = closed == Direction::incoming ? Direction::outgoing : Direction::incoming;
    bool other_present = other == Direction::outgoing && scheduler_.is_dialling(ski);
    for (const auto& link : contest_view(ski, std::nullopt).links)
        other_present = other_present || link.direction == other;
    PeerClose close{closed, other_present,
                    classify_close(info.by == net::CloseInfo::By::peer, info.code, info.reason), peer_spoke};
    const auto rule = learn_rule(config_.local_ski, ski, close);
    if (!rule) return;
    if (rules_.learn(ski, *rule, [this, ski] {
            trust_.when_durable([ski](const std::optional<std::string>& error) {
                if (error)
                    spdlog::error("could not store how {} settles double connections: {}", short_ski(ski),
                                  *error);
            });
        }))
        spdlog::info(
            "SHIP {}: the peer closed our {} link of a double connection ({}): it applies the {} rule",
            short_ski(ski), to_string(closed), describe(info), to_string(*rule));
}

} // namespace ship::hub
