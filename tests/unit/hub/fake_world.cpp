#include "fake_world.hpp"

#include <variant>

namespace ship::hub::test {

namespace {
using std::chrono::milliseconds;
}

// ---- FakeLink ----

FakeLink::~FakeLink() {
    network_.dropped_by_hub(id_);
}

bool FakeLink::send(std::span<const std::uint8_t> message) {
    if (state != State::open || close_requested) return false;
    network_.to_peer(id_, std::vector<std::uint8_t>(message.begin(), message.end()));
    return true;
}

void FakeLink::close(std::uint16_t code, std::string_view reason) {
    if (state == State::closed || close_requested) return;
    close_requested = true;
    close_reason = std::string(reason);
    const bool was_open = state == State::open;
    state = State::closing;
    network_.closed_by_hub(id_, code, close_reason, was_open);
}

void FakeLink::opened() {
    if (state != State::connecting) return;
    state = State::open;
    if (handler_) handler_->on_open(*this);
}

void FakeLink::deliver(std::vector<std::uint8_t> message) {
    if (state != State::open || !handler_) return; // closing: what still arrives is not delivered
    handler_->on_message(*this, std::move(message));
}

void FakeLink::ended(net::CloseInfo info) {
    if (state == State::closed) return;
    state = State::closed;
    ++closed_reports;
    if (handler_) handler_->on_closed(*this, info);
}

// ---- FakeNetwork ----

void FakeNetwork::later(std::uint64_t link_id, bool to_hub, std::function<void()> fn) {
    auto& last = last_delivery_[{link_id, to_hub}];
    const auto at = std::max(clock_.now() + milliseconds(delay_ms()), last);
    last = at;
    clock_.schedule(std::chrono::duration_cast<milliseconds>(at - clock_.now()), std::move(fn));
}

std::shared_ptr<FakeLink> FakeNetwork::hub_end(std::uint64_t link_id) const {
    auto it = links.find(link_id);
    return it == links.end() ? nullptr : it->second.lock();
}

PeerEnd* FakeNetwork::end_of(std::uint64_t link_id, std::string* ski) {
    for (auto& [s, peer] : peers_)
        if (auto it = peer.ends.find(link_id); it != peer.ends.end()) {
            if (ski) *ski = s;
            return &it->second;
        }
    return nullptr;
}

std::shared_ptr<net::Link> FakeNetwork::dial(const net::DialRequest& request, net::LinkHandler& handler) {
    if (stop_.stop_requested() || released_) return nullptr;
    const std::uint64_t id = ++last_id_;
    auto link = std::make_shared<FakeLink>(*this, id, ship::Role::client, request.expected_ski, &handler);
    links[id] = link;
    later(id, true, [this, id, ski = request.expected_ski] {
        auto l = hub_end(id);
        if (!l || l->state != FakeLink::State::connecting) return;
        if (!chance(options_.dial_success_percent)) {
            l->ended({net::close_no_close_frame, "connection refused", net::CloseInfo::By::transport, false});
            return;
        }
        auto& end = peers_[ski].ends[id];
        end.link_id = id;
        end.peer_dialled = false;
        end.open = true;
        start_end(ski, id);
        l->opened();
        peer_applies_rule(ski, id);
    });
    return link;
}

void FakeNetwork::peer_dials(const std::string& ski) {
    if (released_ || !hooks_.admit || stop_.stop_requested()) return; // a stopping server answers 503
    if (hooks_.refuse_in_tls && hooks_.refuse_in_tls(ski, "192.0.2.1:4711")) return;
    const std::uint64_t id = ++last_id_;
    auto link = std::make_shared<FakeLink>(*this, id, ship::Role::server, ski, nullptr);
    links[id] = link;
    const auto admission = hooks_.admit(link);
    if (!admission.handler) return; // refused before the upgrade: the link is dropped here
    link->set_handler(admission.handler);
    later(id, true, [this, id, ski] {
        auto l = hub_end(id);
        if (!l || l->state != FakeLink::State::connecting) return;
        auto& end = peers_[ski].ends[id];
        end.link_id = id;
        end.peer_dialled = true;
        end.open = true;
        start_end(ski, id);
        l->opened();
        peer_applies_rule(ski, id);
    });
}

void FakeNetwork::start_end(const std::string& ski, std::uint64_t link_id) {
    auto* end = end_of(link_id);
    ship::ConnectionConfig config;
    config.own_ship_id = "peer-" + ski.substr(0, 6);
    config.peer_trusted = true;
    config.allow_waiting_for_trust = true;
    end->sme = std::make_unique<ship::Connection>(std::move(config));
    end->sme->open(end->peer_dialled ? ship::Role::client : ship::Role::server, clock_.now());
    run_end(ski, link_id);
}

void FakeNetwork::run_end(const std::string& ski, std::uint64_t link_id) {
    auto* end = end_of(link_id);
    if (!end || !end->sme) return;
    std::optional<std::pair<std::uint16_t, std::string>> close;
    for (auto& action : end->sme->take_actions()) {
        if (auto* send = std::get_if<action::Send>(&action)) {
            if (close) continue;
            later(link_id, true, [this, link_id, bytes = std::move(send->bytes)]() mutable {
                if (auto l = hub_end(link_id)) l->deliver(std::move(bytes));
            });
        } else if (auto* c = std::get_if<action::CloseTransport>(&action)) {
            if (!close) close = std::make_pair(c->code, c->reason);
        } else if (std::holds_alternative<action::Completed>(action)) {
            end->data_exchange = true;
            end->data_exchange_since = clock_.now();
        }
    }
    if (close) {
        // The peer's close frame; the hub's link reports it as the peer's.
        later(link_id, true, [this, link_id, close = *close] {
            if (auto l = hub_end(link_id))
                l->ended({close.first, close.second, net::CloseInfo::By::peer, true});
        });
        end_gone(ski, link_id, "closed by the peer itself");
        return;
    }
    arm_end(ski, link_id);
}

void FakeNetwork::arm_end(const std::string& ski, std::uint64_t link_id) {
    auto* end = end_of(link_id);
    const auto deadline = end->sme->next_deadline();
    if (deadline == end->armed_for) return;
    if (end->deadline) clock_.cancel(std::exchange(end->deadline, 0));
    end->armed_for = deadline;
    if (!deadline) return;
    const auto delay = std::max(milliseconds(0), std::chrono::ceil<milliseconds>(*deadline - clock_.now()));
    end->deadline = clock_.schedule(delay, [this, ski, link_id] {
        auto* e = end_of(link_id);
        if (!e || !e->sme) return;
        e->deadline = 0;
        e->armed_for.reset();
        e->sme->handle_timeout(clock_.now());
        run_end(ski, link_id);
    });
}

void FakeNetwork::end_gone(const std::string& ski, std::uint64_t link_id, const std::string& reason) {
    auto peer = peers_.find(ski);
    if (peer == peers_.end()) return;
    auto it = peer->second.ends.find(link_id);
    if (it == peer->second.ends.end()) return;
    if (it->second.deadline) clock_.cancel(it->second.deadline);
    if (it->second.sme && !it->second.sme->closed()) {
        it->second.sme->transport_closed(reason);
        it->second.sme->take_actions();
    }
    peer->second.ends.erase(it);
}

void FakeNetwork::to_peer(std::uint64_t link_id, std::vector<std::uint8_t> message) {
    later(link_id, false, [this, link_id, message = std::move(message)] {
        std::string ski;
        auto* end = end_of(link_id, &ski);
        if (!end || !end->open || !end->sme) return;
        end->sme->receive(message, clock_.now());
        run_end(ski, link_id);
    });
}

void FakeNetwork::closed_by_hub(std::uint64_t link_id, std::uint16_t code, const std::string& reason,
                                bool was_open) {
    if (!was_open) {
        later(link_id, true, [this, link_id, code, reason] {
            if (auto l = hub_end(link_id)) l->ended({code, reason, net::CloseInfo::By::local, false});
        });
        return;
    }
    // The close frame reaches the peer, which answers; then the hub's link reports the close as its own.
    later(link_id, false, [this, link_id, code, reason] {
        std::string ski;
        if (auto* end = end_of(link_id, &ski); end && end->open) {
            check_double_close(ski, link_id, reason);
            end_gone(ski, link_id, "closed by the hub: " + reason);
        }
        later(link_id, true, [this, link_id, code, reason] {
            if (auto l = hub_end(link_id)) l->ended({code, reason, net::CloseInfo::By::local, true});
        });
    });
}

void FakeNetwork::dropped_by_hub(std::uint64_t link_id) {
    std::string ski;
    if (!end_of(link_id, &ski)) return;
    later(link_id, false, [this, ski, link_id] { end_gone(ski, link_id, "going away"); });
}

void FakeNetwork::peer_ends_one(const std::string& ski, bool politely) {
    auto peer = peers_.find(ski);
    if (peer == peers_.end() || peer->second.ends.empty()) return;
    auto it = peer->second.ends.begin();
    std::advance(it, static_cast<long>(rng_() % peer->second.ends.size()));
    const std::uint64_t id = it->first;
    if (politely && it->second.data_exchange) {
        it->second.sme->close("the peer closes", clock_.now());
        run_end(ski, id);
        return;
    }
    end_gone(ski, id, "dropped by the peer");
    later(id, true, [this, id] {
        if (auto l = hub_end(id))
            l->ended({net::close_no_close_frame, "connection lost", net::CloseInfo::By::transport, true});
    });
}

// The peer's own SHIP 12.2.2 decision when it holds two links to the hub: the loser gets 4001.
// Like installed stacks, a peer decides at once or a little later; a spec peer with the smaller SKI leaves
// it to the hub. A legacy peer (ship-go v0.6) always decides, within the hub's verdict wait (500 ms): one
// that waits longer looks like a spec peer to the hub, which then learns that rule (peer_rules.hpp).
void FakeNetwork::peer_applies_rule(const std::string& ski, std::uint64_t newest) {
    if (peers_[ski].ends.size() < 2) return;
    if (std::uniform_int_distribution<int>(1, 2)(rng_) == 1)
        clock_.schedule(milliseconds(std::uniform_int_distribution<int>(20, 400)(rng_)),
                        [this, ski, newest] { peer_decides(ski, newest); });
    else
        peer_decides(ski, newest);
}

void FakeNetwork::peer_decides(const std::string& ski, std::uint64_t newest) {
    auto& ends = peers_[ski].ends;
    if (ends.size() < 2 || !ends.contains(newest)) return;
    const bool peer_larger = ski > options_.local_ski;
    std::vector<std::uint64_t> losers;
    for (auto& [id, end] : ends) {
        if (id == newest) continue;
        if (options_.peer_rule == DoubleConnectionRule::legacy) {
            const bool newest_by_larger = ends[newest].peer_dialled == peer_larger;
            const bool older_by_larger = end.peer_dialled == peer_larger;
            losers.push_back(newest_by_larger || !older_by_larger ? id : newest);
        } else if (peer_larger) {
            losers.push_back(id); // spec: the larger SKI keeps the most recent
        }
    }
    for (auto id : losers) {
        if (!ends.contains(id)) continue;
        ++peer_rule_closes;
        end_gone(ski, id, "double connection (the peer's rule)");
        // Each stack's signature (peer_rules.hpp): ship-go v0.6 closes the loser with 1000 "double
        // connection", a spec stack with SHIP's 4001.
        const std::uint16_t code =
            options_.peer_rule == DoubleConnectionRule::legacy ? net::close_normal : ship::close_code_ship;
        later(id, true, [this, id, code] {
            if (auto l = hub_end(id)) l->ended({code, "double connection", net::CloseInfo::By::peer, true});
        });
    }
}

// Legacy (ship-go v0.6): the link dialled by the larger SKI survives. The hub must never drop that one as
// a double connection while the smaller SKI's link still lives.
void FakeNetwork::check_double_close(const std::string& ski, std::uint64_t link_id,
                                     const std::string& reason) {
    if (options_.peer_rule != DoubleConnectionRule::legacy) return;
    if (reason.find("double connection") == std::string::npos) return;
    const bool peer_larger = ski > options_.local_ski;
    auto& ends = peers_[ski].ends;
    if (ends.size() > 1) ++double_closes;
    const bool closed_by_larger = ends[link_id].peer_dialled == peer_larger;
    if (!closed_by_larger) return;
    for (auto& [id, end] : ends)
        if (id != link_id && end.open && (end.peer_dialled == peer_larger) != closed_by_larger)
            violations.push_back("SKI " + ski.substr(0, 8) + ": the hub closed link " +
                                 std::to_string(link_id) +
                                 " (dialled by the larger SKI) as a double connection; link " +
                                 std::to_string(id) + " (the smaller's) lives");
}

std::size_t FakeNetwork::ends_in_data_exchange(const std::string& ski) const {
    auto peer = peers_.find(ski);
    if (peer == peers_.end()) return 0;
    std::size_t n = 0;
    for (const auto& [id, end] : peer->second.ends)
        n += end.open && end.data_exchange;
    return n;
}

std::size_t FakeNetwork::settled_links(const std::string& ski, std::chrono::milliseconds settled) const {
    auto peer = peers_.find(ski);
    if (peer == peers_.end()) return 0;
    std::size_t n = 0;
    for (const auto& [id, end] : peer->second.ends) {
        const auto l = hub_end(id);
        n += end.open && end.data_exchange && clock_.now() - end.data_exchange_since >= settled && l &&
             l->state == FakeLink::State::open && !l->close_requested;
    }
    return n;
}

} // namespace ship::hub::test
