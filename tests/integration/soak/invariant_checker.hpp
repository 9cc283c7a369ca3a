// Reads shipd's D-Bus signal stream in arrival order and holds it to the contract: per SKI PeerConnected and
// PeerDisconnected strictly alternate, starting with PeerConnected; when shipd's bus name loses its owner
// (the daemon stopped) every SKI still connected counts as disconnected. Breaches are kept, never thrown.
#pragma once

#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../daemon/dbus_test_support.hpp"

namespace ship::soak {

class InvariantChecker {
public:
    // SKIs of the soak's peers: a connection signal for any other SKI is a breach.
    explicit InvariantChecker(std::set<std::string> known_skis)
        : known_(std::move(known_skis)) {}

    // Feed signals in the order the client received them. NameOwnerChanged for org.shipd.Hub1 must be in
    // the same stream (the bus sends it after everything the old owner sent).
    void consume(const std::vector<test::Signal>& signals);

    bool connected(const std::string& ski) const { return connected_.contains(ski); }
    const std::set<std::string>& connected_skis() const { return connected_; }
    std::size_t connects_total() const { return connects_; }
    int epoch() const { return epoch_; } // incremented each time shipd left the bus

    const std::map<std::string, std::size_t>& signal_counts() const { return counts_; }
    std::size_t signals_total() const;
    // Breaches found outside the signal stream (ListPeers disagreeing, a peer not back in time, ...).
    void violation(std::string what) { violations_.push_back(std::move(what)); }
    const std::vector<std::string>& violations() const { return violations_; }

private:
    std::set<std::string> known_;
    std::set<std::string> connected_;
    std::map<std::string, std::size_t> counts_;
    std::vector<std::string> violations_;
    std::size_t connects_ = 0;
    int epoch_ = 0;
};

} // namespace ship::soak
