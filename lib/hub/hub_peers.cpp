// Known peers (trusted, discovered or connected): their records as D-Bus shows them, and the mDNS view.
#include <tuple>

#include "hub/address_list.hpp"
#include "hub/hub_internal.hpp"
#include "ship/ski.hpp"

namespace ship::hub {

namespace {

// Whether a peer's new announcement changes what its record shows (D-Bus Peer object) or where we dial it.
bool announcement_changed(const DiscoveredService& before, const DiscoveredService& now) {
    auto shown = [](const DiscoveredService& d) {
        return std::tie(d.ship_id, d.brand, d.model, d.type, d.host, d.port, d.path, d.host_name,
                        d.addresses);
    };
    return shown(before) != shown(now);
}

} // namespace

PeerInfo& Hub::record(const std::string& ski) {
    auto [it, inserted] = peers_.try_emplace(ski);
    if (inserted) it->second.ski = ski;
    return it->second;
}

void Hub::refresh_record(const std::string& ski) {
    auto& rec = record(ski);
    rec.trusted = trust_.is_trusted(ski);
    if (const auto* peer = trust_.find(ski)) {
        if (rec.ship_id.empty()) rec.ship_id = peer->ship_id;
        // The stored address, also when it changed (a Connect to a new one reached data exchange).
        if (peer->address) {
            rec.host = peer->address->host;
            rec.port = peer->address->port;
        }
    }
    if (auto it = discovered_.find(ski); it != discovered_.end()) {
        const auto& d = it->second;
        if (rec.ship_id.empty()) rec.ship_id = d.ship_id;
        rec.brand = d.brand;
        rec.model = d.model;
        rec.type = d.type;
        if (!d.host.empty()) {
            rec.host = d.host;
            rec.port = d.port;
        }
    }
    rec.blocked = trust_.is_blocked(ski);
    if (auto* c = owner_of(ski)) {
        // Who is asking: an incoming peer's address is where its connection comes from (from the first
        // byte on), whatever it announces over mDNS.
        if (c->direction() == Direction::incoming)
            if (auto [host, port] = split_host_port(c->link().remote_address()); !host.empty()) {
                rec.host = std::move(host);
                rec.port = port;
            }
        const auto& s = c->stats();
        rec.messages_in = s.messages_in;
        rec.messages_out = s.messages_out;
        rec.bytes_in = s.bytes_in;
        rec.bytes_out = s.bytes_out;
    }
}

void Hub::publish(const std::string& ski) {
    refresh_record(ski);
    if (events_) events_->peer_changed(record(ski));
}

void Hub::forget_if_unknown(const std::string& ski) {
    if (trust_.is_trusted(ski) || trust_.is_blocked(ski) || discovered_.contains(ski) ||
        registry_.contains(ski) || connects_.pending(ski))
        return;
    if (peers_.erase(ski) && events_) events_->peer_removed(ski);
}

std::vector<PeerInfo> Hub::list_peers() const {
    std::vector<PeerInfo> out;
    for (const auto& [ski, rec] : peers_) {
        PeerInfo info = rec;
        info.trusted = trust_.is_trusted(ski);
        if (auto* c = owner_of(ski)) {
            info.messages_in = c->stats().messages_in;
            info.messages_out = c->stats().messages_out;
            info.bytes_in = c->stats().bytes_in;
            info.bytes_out = c->stats().bytes_out;
        }
        out.push_back(std::move(info));
    }
    return out;
}

std::optional<PeerInfo> Hub::peer(std::string_view ski) const {
    const auto n = ship::normalize_ski(ski);
    if (!n) return std::nullopt;
    for (auto& info : list_peers())
        if (info.ski == *n) return info;
    return std::nullopt;
}

std::vector<DiscoveredService> Hub::list_discovered() const {
    std::vector<DiscoveredService> out;
    for (const auto& [ski, d] : discovered_)
        out.push_back(d);
    return out;
}

void Hub::set_discovered(std::vector<DiscoveredService> services) {
    std::map<std::string, DiscoveredService, std::less<>> next;
    for (auto& s : services)
        if (s.ski != config_.local_ski) next.emplace(s.ski, std::move(s));
    auto previous = std::move(discovered_);
    discovered_ = std::move(next);
    for (const auto& [ski, d] : discovered_) {
        auto it = previous.find(ski);
        if (it != previous.end() && !announcement_changed(it->second, d)) continue;
        record(ski);
        publish(ski);
        if (trust_.is_trusted(ski) && !registry_.is_connected(ski)) scheduler_.request(ski);
    }
    for (const auto& [ski, d] : previous)
        if (!discovered_.contains(ski)) forget_if_unknown(ski);
    if (events_) events_->discovered_changed();
}

} // namespace ship::hub
