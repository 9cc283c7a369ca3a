#include "hub/peer_rules.hpp"

#include <algorithm>

#include "hub/connection_handle.hpp"
#include "hub/trust_store.hpp"

namespace ship::hub {

namespace {

struct Pick {
    bool defer = false; // the rule lets the peer decide (spec, smaller SKI, passive wait not over)
    bool dial = false;  // our dial in flight wins
    std::uint64_t link = 0;
};

// The survivor under `rule`, asked of should_keep_new link by link in the order they arrived (each later
// one is "the new connection" against the best so far), then of own_dial_yields for our dial in flight.
Pick pick(std::string_view local, std::string_view remote, DoubleConnectionRule rule, const Contest& contest,
          bool wait_over) {
    // Whether the rule decides at all does not depend on directions: spec with the smaller SKI defers.
    if (should_keep_new(local, remote, Direction::outgoing, Direction::incoming, rule, wait_over) ==
        Decision::defer)
        return {true, false, 0};
    std::vector<const ContestLink*> links;
    for (const auto& l : contest.links)
        links.push_back(&l);
    std::stable_sort(links.begin(), links.end(),
                     [](const ContestLink* a, const ContestLink* b) { return a->arrived < b->arrived; });
    const ContestLink* best = nullptr;
    for (const ContestLink* l : links)
        if (!best || should_keep_new(local, remote, best->direction, l->direction, rule, wait_over) ==
                         Decision::keep_new)
            best = l;
    if (!best) return {};
    if (contest.dial_in_flight && best->direction == Direction::incoming &&
        !own_dial_yields(local, remote, rule, wait_over))
        return {false, true, 0};
    return {false, false, best->id};
}

Judgement keep(const Pick& p, std::string_view why) {
    if (p.dial) return {Judgement::Kind::keep_dial, 0, {}, why};
    return {Judgement::Kind::keep_link, p.link, {}, why};
}

} // namespace

Judgement judge(std::string_view local_ski, std::string_view remote_ski, DoubleConnectionRule configured,
                std::optional<DoubleConnectionRule> learned, const Contest& contest, SteadyTime now,
                const ContestTimes& times) {
    if (contest.links.empty()) return {Judgement::Kind::nothing, 0, {}, "no link left"};
    if (contest.links.size() == 1 && !contest.dial_in_flight)
        return {Judgement::Kind::keep_link, contest.links.front().id, {}, "the only link left"};

    SteadyTime last_arrival = contest.since;
    const ContestLink* in_data_exchange = nullptr;
    for (const auto& l : contest.links) {
        last_arrival = std::max(last_arrival, l.arrived);
        if (l.in_data_exchange && (!in_data_exchange || l.arrived < in_data_exchange->arrived))
            in_data_exchange = &l;
    }
    const SteadyTime bound = contest.since + times.passive_wait;
    const bool wait_over = now >= bound;

    if (in_data_exchange) {
        // The others are held back unbuilt, never further along: it stays. The peer may still end it (ship-go
        // v0.6 closes the loser without a word), so give its decision the verdict wait first.
        const SteadyTime until = std::min(bound, last_arrival + times.verdict_wait);
        if (now < until)
            return {Judgement::Kind::wait, 0, until, "a link in data exchange; the peer may end it"};
        return {Judgement::Kind::keep_link, in_data_exchange->id, {}, "kept the link in data exchange"};
    }

    if (learned) {
        const Pick p = pick(local_ski, remote_ski, *learned, contest, wait_over);
        if (p.defer) return {Judgement::Kind::wait, 0, bound, "the peer (larger SKI, spec rule) decides"};
        return keep(p, "decided by the peer's learned rule");
    }

    // Unknown rule: the peer's own decision, if it makes one, comes first.
    SteadyTime until = bound;
    if (local_ski > remote_ski && !contest.dial_in_flight)
        until = std::min(bound, last_arrival + times.verdict_wait);
    if (now < until) return {Judgement::Kind::wait, 0, until, "waiting for the peer's own decision"};
    Judgement j =
        keep(pick(local_ski, remote_ski, configured, contest, true), "the peer did not decide; our rule");
    // Only a spec peer with the smaller SKI leaves it to us once every link is up (and our dial resolved).
    j.peer_waited = local_ski > remote_ski && !contest.dial_in_flight;
    return j;
}

CloseSignature classify_close(bool close_frame, std::uint16_t code, std::string_view reason) {
    if (!close_frame) return CloseSignature::no_close_frame;
    const bool double_reason = reason.find(double_connection_reason) != std::string_view::npos;
    if (code == 1000 && double_reason) return CloseSignature::normal_double_reason;
    if (code == 4001 && double_reason) return CloseSignature::ship_double_connection;
    return CloseSignature::other;
}

std::optional<DoubleConnectionRule> learn_rule(std::string_view local_ski, std::string_view remote_ski,
                                               const PeerClose& close) {
    if (!close.other_direction_present || local_ski == remote_ski) return std::nullopt;
    const bool larger = local_ski > remote_ski;
    const bool closed_ours = close.closed == Direction::outgoing; // it kept its own dial
    switch (close.how) {
    case CloseSignature::ship_double_connection:
        return DoubleConnectionRule::spec;
    case CloseSignature::normal_double_reason:
        // ship-go v0.6 sends 1000 "double connection" for the loser that is its new link, i.e. when the
        // link the smaller SKI dialled came last; that is ours if we are the smaller.
        if (closed_ours != larger) return DoubleConnectionRule::legacy;
        return std::nullopt;
    case CloseSignature::no_close_frame:
        if (closed_ours) {
            // Ours refused right after the upgrade: OpenEEBUS while its dial runs. With the peer larger,
            // ship-go v0.6 does the same (it keeps its own, the larger's, dial); it answers our handshake
            // first if our link was its registered one.
            if (!larger && close.peer_spoke) return DoubleConnectionRule::legacy;
            return DoubleConnectionRule::first_come;
        }
        // It dropped its own dial for ours: only ship-go v0.6 does that silently, when ours is the larger's.
        if (larger) return DoubleConnectionRule::legacy;
        return std::nullopt;
    case CloseSignature::other:
        break;
    }
    return std::nullopt;
}

std::optional<DoubleConnectionRule> PeerRules::learned(const std::string& ski) const {
    if (const auto* peer = trust_.find(ski); peer && peer->double_connection) return peer->double_connection;
    if (auto it = seen_.find(ski); it != seen_.end()) return it->second;
    return std::nullopt;
}

bool PeerRules::learn(const std::string& ski, DoubleConnectionRule rule,
                      const std::function<void()>& persisted) {
    const bool changed = learned(ski) != rule;
    // Untrusted peers are remembered in memory too (a pairing peer's dials cross as well); a flood of
    // fresh certificates cannot grow this without bound.
    if (!seen_.contains(ski) && seen_.size() >= max_untrusted) seen_.erase(seen_.begin());
    seen_[ski] = rule;
    if (trust_.set_double_connection_rule(ski, rule) && persisted) persisted();
    return changed;
}

} // namespace ship::hub
