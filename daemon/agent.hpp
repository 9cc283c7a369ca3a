// The registered pairing agents (org.shipd.Hub1.Agent1, BlueZ style): one is asked at a time, the others wait
// in line and take over in registration order when it leaves; calls to an agent never block the loop.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "bus_context.hpp"
#include "hub/pairing_api.hpp"

namespace ship::daemon {

inline constexpr const char* agent_interface = "org.shipd.Hub1.Agent1";

// Loop thread only. Semantics (daemon/README.md, "Pairing agents"):
// - RegisterAgent queues the caller's agent; the first in line is the one asked. One agent per bus
//   connection (a second one from the same sender is InvalidArgument).
// - Every waiting pairing request is asked of the active agent once (AuthorizePeer, with a timeout at the
//   request's deadline; asked again only if a new agent takes over). true = approve, false = deny; an error
//   reply or no reply by the deadline is no answer: the request goes on waiting for Trust/CancelPairing and
//   then expires.
// - A request that ends otherwise (decided elsewhere, expired, peer gone) cancels the call and the agent
//   gets Cancel(peer, reason).
// - An agent that unregisters or leaves the bus (NameOwnerChanged) takes the requests it was asked with
//   it: they end at once (hello abort, reason "the pairing agent ... left", no quiet period), so the
//   device's next attempt reaches the agent next in line. The next agent becomes active.
// - At stop every registered agent gets Release().
class AgentManager final : public ship::hub::PairingEvents {
public:
    AgentManager(sdbus::IConnection& connection, ship::hub::PairingApi& pairing);
    ~AgentManager() override;
    AgentManager(const AgentManager&) = delete;
    AgentManager& operator=(const AgentManager&) = delete;

    ship::hub::Result register_agent(const std::string& sender, const sdbus::ObjectPath& path);
    ship::hub::Result unregister_agent(const std::string& sender, const sdbus::ObjectPath& path);
    // shipd stops: Release() to every agent (no reply awaited); nothing is asked afterwards.
    void release_all();

    // For tests and logs: "<sender> <path>" of the agent asked now, and how many are registered.
    std::optional<std::string> active() const;
    std::size_t registered() const noexcept { return agents_.size(); }

    // ship::hub::PairingEvents
    void pairing_requested(const ship::hub::PairingRequest& request) override;
    void pairing_ended(const ship::hub::PairingRequest& request, const std::string& reason) override;

private:
    struct Agent {
        std::string sender;
        sdbus::ObjectPath path;
        std::unique_ptr<sdbus::IProxy> proxy;
        sdbus::Slot watch; // NameOwnerChanged of `sender`
    };
    struct Asked {
        std::string sender;
        sdbus::PendingAsyncCall call;
    };

    void ask(const ship::hub::PairingRequest& request);
    void answered(std::uint64_t request, const std::string& sender, sdbus::MethodReply& reply,
                  const sdbus::Error* error);
    // The agent of `sender` is gone (`why`): its requests end, the next in line takes over.
    void remove(const std::string& sender, const std::string& why);
    void notify(Agent& agent, const char* method, const std::optional<std::string>& peer,
                const std::optional<std::string>& reason);
    Agent* find(const std::string& sender);

    sdbus::IConnection& connection_;
    ship::hub::PairingApi& pairing_;
    std::deque<Agent> agents_;                                   // front: the one asked
    std::vector<Agent> retired_;                                 // removed, destroyed on a later call
    std::map<std::uint64_t, ship::hub::PairingRequest> waiting_; // requests not yet ended
    std::map<std::uint64_t, Asked> asked_;                       // calls on their way
    bool released_ = false;
};

// The details of AuthorizePeer: SKI s, ShipID s, Brand s, Model s, Type s, Host s, Port q, Deadline t.
std::map<std::string, sdbus::Variant> agent_details(const ship::hub::PairingRequest& request);

} // namespace ship::daemon
