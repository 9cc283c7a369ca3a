// Dialling: one attempt per peer at a time, its addresses one after another, host names resolved off the
// strand, failures reported to the peer's record and to a waiting Connect.
#include "hub/address_list.hpp"
#include "hub/hub_internal.hpp"
#include "net/listen_address.hpp"
#include "util/log_context.hpp"

namespace ship::hub {

std::function<void()> Hub::dial(const std::string& ski, const PeerAddress& address, DialTicket ticket) {
    if (stopping_) return {};
    auto candidates = dial_candidates(ski);
    if (candidates.empty()) candidates.push_back(address);
    auto attempt =
        std::make_shared<DialAttempt>(*this, ++last_attempt_id_, std::move(candidates), std::move(ticket));
    attempt->self = attempt;
    dial_attempts_[attempt->id] = attempt;
    if (!dial_next(attempt)) {
        dial_attempts_.erase(attempt->id);
        return {}; // the ticket ends with the attempt: the next one is scheduled
    }
    std::weak_ptr<DialAttempt> weak = attempt;
    return [this, weak] {
        auto a = weak.lock();
        if (!a || a->cancelled) return;
        a->cancelled = true;
        if (a->link) {
            a->link->close(ship::close_code_ship, "dial cancelled");
        } else {
            // A host name is being resolved: the attempt ends now, its late result is dropped. On a later
            // turn, not inside the scheduler's cancel.
            timers_.schedule(std::chrono::milliseconds(0), [this, id = a->id] { dial_attempt_over(id); });
        }
    };
}

std::vector<PeerAddress> Hub::dial_candidates(const std::string& ski) const {
    std::optional<Announced> announced;
    if (auto it = discovered_.find(ski); it != discovered_.end()) {
        const auto& d = it->second;
        Announced a;
        a.addresses = d.addresses;
        a.host_name = d.host_name;
        // A producer that fills only `host` (an older caller, a test) announces that one address or name.
        if (a.addresses.empty() && a.host_name.empty()) {
            if (is_numeric_host(d.host))
                a.addresses.push_back(d.host);
            else
                a.host_name = d.host;
        }
        a.port = d.port;
        a.path = d.path.empty() ? "/ship/" : d.path;
        announced = std::move(a);
    }
    const auto* peer = trust_.find(ski);
    // While a Connect waits, its address alone: the outcome it reports is that address's. Otherwise the
    // announced and stored ones; an address that never worked only when there is nothing else.
    if (auto asked = connects_.address(ski)) return {*asked};
    auto order = dial_order(announced, peer ? peer->address : std::nullopt);
    if (order.empty())
        if (auto it = unproven_addresses_.find(ski); it != unproven_addresses_.end())
            order.push_back(it->second);
    return order;
}

bool Hub::dial_next(const std::shared_ptr<DialAttempt>& attempt) {
    const std::string ski = attempt->ticket.ski();
    while (attempt->next < attempt->candidates.size() && !attempt->cancelled && !stopping_) {
        const PeerAddress candidate = attempt->candidates[attempt->next++];
        attempt->address = candidate;
        if (!is_numeric_host(candidate.host)) {
            // Resolved off the strand; the attempt (and its ticket) stays in flight meanwhile.
            spdlog::debug("dialling {}: resolving {}", short_ski(ski), candidate.host);
            std::weak_ptr<DialAttempt> weak = attempt;
            resolver_.resolve(candidate.host, [this, weak, candidate](std::vector<std::string> addresses,
                                                                      std::string error) {
                auto a = weak.lock();
                if (!a || a->cancelled || stopping_ || !dial_attempts_.contains(a->id)) return;
                if (addresses.empty()) {
                    const std::string& peer_ski = a->ticket.ski();
                    const util::LogScope scope(peer_ski);
                    // Like a refused dial: on the bus (LastError, State) and to a Connect that asked for it.
                    report_failure(peer_ski,
                                   "dial to " + net::display_listen_address(candidate.host, candidate.port) +
                                       " failed: " + candidate.host + " does not resolve: " + error,
                                   false, candidate);
                }
                std::vector<PeerAddress> tried(a->candidates.begin(),
                                               a->candidates.begin() + static_cast<long>(a->next));
                auto more = resolved_candidates(candidate, addresses, tried);
                a->candidates.insert(a->candidates.begin() + static_cast<long>(a->next), more.begin(),
                                     more.end());
                if (!dial_next(a)) dial_attempt_over(a->id);
            });
            return true;
        }
        net::DialRequest request;
        request.host = candidate.host;
        request.port = candidate.port;
        request.path = candidate.path.empty() ? "/ship/" : candidate.path;
        request.expected_ski = ski;
        attempt->early.clear();
        attempt->link = network_.dial(request, *attempt);
        if (attempt->link) {
            spdlog::debug("dialling {} at {}:{}{}", short_ski(ski), candidate.host, candidate.port,
                          request.path);
            return true;
        }
    }
    return false;
}

void Hub::dial_link_failed(const std::shared_ptr<DialAttempt>& attempt, const net::CloseInfo& info) {
    if (!attempt) return;
    attempt->link.reset();
    // Our own cancels (an incoming connection won, untrust, stop) are no failure to report.
    if (!attempt->cancelled && !stopping_ && info.by != net::CloseInfo::By::local) {
        const std::string& ski = attempt->ticket.ski();
        const util::LogScope scope(ski);
        report_failure(ski,
                       "dial to " +
                           net::display_listen_address(attempt->address.host, attempt->address.port) +
                           " failed: " + (info.reason.empty() ? describe(info) : info.reason),
                       info.timed_out, attempt->address);
    }
    // Refused by the peer itself (HTTP 503: it holds a connection to us, or its limits): another address of
    // the same peer would hear the same.
    const bool refused = info.reason.find("HTTP 503") != std::string::npos;
    if (attempt->cancelled || stopping_ || refused || !dial_next(attempt)) dial_attempt_over(attempt->id);
}

void Hub::dial_attempt_over(std::uint64_t id) {
    auto node = dial_attempts_.extract(id);
    const std::string ski = node.empty() ? std::string() : node.mapped()->ticket.ski();
    node = {}; // drops the ticket: a failed attempt, the next is scheduled
    if (!ski.empty() && doubts_.contains(ski)) contest(ski);
    maybe_finish();
}

void Hub::dial_opened(const std::shared_ptr<DialAttempt>& attempt) {
    if (!attempt) return;
    auto link = attempt->link;
    auto keep = dial_attempts_.extract(attempt->id);
    const std::string ski = link->peer_ski();
    if (!attempt->ticket.connected()) {
        auto closing = std::make_shared<HeldLink>(*this, link, Direction::outgoing);
        link->set_handler(closing.get());
        held_links_[link->id()] = closing;
        link->close(ship::close_code_ship, stopping_ ? "shutting down" : "dial no longer wanted");
    } else if (registry_.is_connected(ski) || has_contending(ski)) {
        // The peer has another link to us: ours is held back like theirs until the double connection is
        // settled (the peer may have refused or kept it already; its decision arrives within a round trip).
        spdlog::info("SHIP {} outgoing: double connection; holding it back", short_ski(ski));
        auto held = hold_contending(link, Direction::outgoing);
        held->early = std::move(attempt->early);
        held->dialled_address = attempt->address;
    } else if (auto connection = offer(link, Direction::outgoing, std::move(attempt->early), false)) {
        connection->dialled_address = attempt->address;
    }
    if (doubts_.contains(ski)) contest(ski); // our dial has resolved
}

void Hub::report_failure(const std::string& ski, const std::string& text, bool is_timeout,
                         const std::optional<PeerAddress>& dialled) {
    auto& rec = record(ski);
    rec.last_error = text;
    rec.last_error_time_us = now_us();
    if (!registry_.contains(ski) && rec.state != PeerState::error) {
        rec.state = PeerState::error;
        rec.error = text;
        if (events_) events_->peer_state_changed(ski, rec.state, rec.error);
    } else if (!registry_.contains(ski) && rec.error != text) {
        rec.error = text;
        if (events_) events_->peer_state_changed(ski, rec.state, rec.error);
    }
    publish(ski);
    if (!connects_.pending(ski)) return;
    const auto asked = connects_.address(ski);
    if (!asked || (dialled && *dialled == *asked)) {
        if (asked) unproven_addresses_[ski] = *asked; // kept for retries only while nothing else is known
        connects_.finish(ski, Error{is_timeout ? ErrorCode::timeout : ErrorCode::connect_failed, text});
        forget_if_unknown(ski);
    } else if (!stopping_) {
        // That was an older dial to another address: now the one the Connect asked for.
        scheduler_.request_now(ski);
    }
}

} // namespace ship::hub
