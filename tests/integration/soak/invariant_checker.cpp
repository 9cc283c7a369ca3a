#include "invariant_checker.hpp"

namespace ship::soak {

void InvariantChecker::consume(const std::vector<test::Signal>& signals) {
    for (const auto& s : signals) {
        ++counts_[s.name];
        if (s.name == "NameOwnerChanged") {
            // args: name, old owner, new owner. Losing the owner ends this shipd's connections at once.
            if (s.args.size() == 3 && s.args[0] == "org.shipd.Hub1" && !s.args[1].empty() &&
                s.args[2].empty()) {
                connected_.clear();
                ++epoch_;
            }
            continue;
        }
        if (s.name != "PeerConnected" && s.name != "PeerDisconnected") continue;
        const std::string& ski = s.args.at(0);
        if (!known_.contains(ski)) violations_.push_back(s.name + " for an SKI no soak peer has: " + ski);
        if (s.name == "PeerConnected") {
            ++connects_;
            if (!connected_.insert(ski).second)
                violations_.push_back("PeerConnected twice without PeerDisconnected: " + ski);
        } else if (connected_.erase(ski) == 0) {
            violations_.push_back("PeerDisconnected without PeerConnected: " + ski + " (" + s.args.at(1) +
                                  ")");
        }
    }
}

std::size_t InvariantChecker::signals_total() const {
    std::size_t n = 0;
    for (const auto& [name, count] : counts_)
        n += count;
    return n;
}

} // namespace ship::soak
