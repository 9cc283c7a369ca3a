// D-Bus Connect calls waiting for their outcome: per SKI the address they asked for and the callers, each
// answered exactly once — connected, the dial's failure, its own deadline, or stop. Strand only.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "hub/hub_api.hpp"
#include "hub/peer_address.hpp"
#include "hub/timers.hpp"

namespace ship::hub {

class ConnectRequests {
public:
    using Done = std::function<void(Result)>;
    // Says, for a timeout's message, how far the peer got ("hello: waiting for the peer's trust").
    using Describe = std::function<std::string(const std::string& ski)>;

    ConnectRequests(TimerService& timers, std::chrono::milliseconds wait, Describe describe);
    ~ConnectRequests(); // unanswered callers are dropped unanswered (finish_all first)
    ConnectRequests(const ConnectRequests&) = delete;
    ConnectRequests& operator=(const ConnectRequests&) = delete;

    // A caller now waits for `ski` (at most `wait`, then ErrorCode::timeout). `address`, if given, is the one
    // to dial from now on (the latest call's wins); without one the known address is dialled.
    void add(const std::string& ski, std::optional<PeerAddress> address, Done done);
    bool pending(const std::string& ski) const { return entries_.contains(ski); }
    // The address a pending Connect asked for.
    std::optional<PeerAddress> address(const std::string& ski) const;

    // Every caller waiting for `ski` gets `outcome` (nullopt: connected); the entry goes. Callers may call
    // back into the hub: nothing of this object is used after the first answer of a batch.
    void finish(const std::string& ski, Result outcome);
    void finish_all(Result outcome);

private:
    struct Caller {
        std::uint64_t id;
        Done done;
        TimerService::Id timer;
    };
    struct Entry {
        std::optional<PeerAddress> address;
        std::vector<Caller> callers;
    };
    void expired(const std::string& ski, std::uint64_t id);

    TimerService& timers_;
    std::chrono::milliseconds wait_;
    Describe describe_;
    std::uint64_t last_id_ = 0;
    std::map<std::string, Entry, std::less<>> entries_;
};

} // namespace ship::hub
