// The one map SKI → connection, changed only on the strand. Deciding the double-connection rule and acting
// on it (build, register, hand back the evicted one) happen in one call, so there is never zero or two
// owners.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "hub/connection_handle.hpp"
#include "hub/double_connection.hpp"

namespace ship::hub {

// Ownership events derive from this registry only: a connection becomes "connected" (PeerConnected) through
// confirm_connected, and stops being so (PeerDisconnected) through the `lost_connected`/`was_connected`
// fields below. Per SKI those two strictly alternate, starting with connected.
//
// The smaller-SKI (passive) side of the spec rule: swap answers Decision::defer and builds nothing. The hub
// keeps the new transport aside unbuilt (a held link, hub/peer_rules.hpp) and asks swap again
//   - when remove_if_matches says the owner went: the slot is then empty, so the held one is built;
//   - after passive_wait (3 s), with passive_wait_over = true: the most recent connection then wins;
//   - never, if the peer closed the held transport meanwhile (the larger SKI chose the other one).
class Registry {
public:
    using Handle = std::shared_ptr<ConnectionHandle>;
    // Makes the new connection (SME and all). Runs only if the new connection wins; must not call back into
    // the registry. Returning null registers nothing.
    using Build = std::function<Handle()>;

    struct SwapResult {
        Decision decision = Decision::keep_existing;
        bool stopping = false; // refused because stop was requested (decision is then keep_existing)
        Handle kept;           // the slot's owner after the call: the new connection if it was built
        // The alive owner that was replaced. The caller closes it (close_as_double_connection); the handle's
        // alive flag makes a second close a no-op. A replaced owner that was already closing is not handed
        // back: its close has an owner already.
        Handle evicted;
        bool lost_connected = false; // the replaced owner had been confirmed connected: emit PeerDisconnected
    };

    struct Removal {
        bool owned = false;         // the connection still owned its slot: schedule the reconnect
        bool was_connected = false; // and it had been confirmed connected: emit PeerDisconnected
        explicit operator bool() const noexcept { return owned; }
    };

    struct Released {
        Handle connection;
        bool was_connected = false;
    };

    Registry(std::string local_ski, DoubleConnectionRule rule, std::stop_token stop = {});

    const std::string& local_ski() const noexcept { return local_ski_; }
    DoubleConnectionRule rule() const noexcept { return rule_; }

    // The rule applied to the current slot of `ski` (a closing owner counts as absent).
    Decision decide(const std::string& ski, Direction direction, bool passive_wait_over = false) const;

    // Applies the rule and, only if the new connection wins, calls build() and registers the result.
    SwapResult swap(const std::string& ski, Direction direction, const Build& build,
                    bool passive_wait_over = false);

    // The owner reached data exchange. True exactly once per owner, and only while it owns the slot and is
    // alive: then emit PeerConnected.
    bool confirm_connected(const std::string& ski, const ConnectionHandle& connection);

    // Frees the slot if `connection` still owns it (alive or closing). A replaced connection gets
    // {owned = false}: no PeerDisconnected, no reconnect from it.
    Removal remove_if_matches(const std::string& ski, const ConnectionHandle& connection);

    // An alive connection owns the slot (in any SHIP state). A closing one does not count.
    bool is_connected(const std::string& ski) const;
    // The alive owner is confirmed connected (in data exchange).
    bool is_confirmed(const std::string& ski) const;
    // The alive owner, or null.
    Handle find(const std::string& ski) const;
    // A slot exists, alive or closing: its end (remove_if_matches) is still to come.
    bool contains(const std::string& ski) const { return slots_.contains(ski); }

    // Empties the registry for shutdown; the caller closes every returned connection (closing ones included:
    // close() is a no-op for them).
    std::vector<Released> take_all();

    // Slots held, closing owners included (they stay until their remove_if_matches).
    std::size_t size() const noexcept { return slots_.size(); }

private:
    struct Slot {
        Handle owner; // never null
        bool connected = false;
    };

    const Slot* alive_slot(const std::string& ski) const;

    std::string local_ski_;
    DoubleConnectionRule rule_;
    std::stop_token stop_;
    std::map<std::string, Slot, std::less<>> slots_;
};

} // namespace ship::hub
