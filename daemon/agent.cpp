#include "agent.hpp"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "peer_object.hpp"

namespace ship::daemon {

namespace {

using ship::hub::ErrorCode;
using ship::hub::PairingRequest;

ship::hub::Result failure(ErrorCode code, std::string message) {
    return ship::hub::Error{code, std::move(message)};
}

std::uint64_t now_us() {
    using namespace std::chrono;
    return static_cast<std::uint64_t>(
        duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

std::string label(const std::string& sender, const std::string& path) {
    return "the agent " + sender + " " + path;
}

} // namespace

std::map<std::string, sdbus::Variant> agent_details(const PairingRequest& r) {
    return {{"SKI", sdbus::Variant(r.ski)},     {"ShipID", sdbus::Variant(r.ship_id)},
            {"Brand", sdbus::Variant(r.brand)}, {"Model", sdbus::Variant(r.model)},
            {"Type", sdbus::Variant(r.type)},   {"Host", sdbus::Variant(r.host)},
            {"Port", sdbus::Variant(r.port)},   {"Deadline", sdbus::Variant(r.deadline_us)}};
}

AgentManager::AgentManager(sdbus::IConnection& connection, ship::hub::PairingApi& pairing)
    : connection_(connection)
    , pairing_(pairing) {}

AgentManager::~AgentManager() {
    for (auto& [id, asked] : asked_)
        asked.call.cancel();
}

AgentManager::Agent* AgentManager::find(const std::string& sender) {
    auto it =
        std::find_if(agents_.begin(), agents_.end(), [&](const Agent& a) { return a.sender == sender; });
    return it == agents_.end() ? nullptr : &*it;
}

std::optional<std::string> AgentManager::active() const {
    if (agents_.empty()) return std::nullopt;
    return agents_.front().sender + " " + std::string(agents_.front().path);
}

ship::hub::Result AgentManager::register_agent(const std::string& sender, const sdbus::ObjectPath& path) {
    retired_.clear();
    if (released_) return failure(ErrorCode::shutting_down, "shipd is shutting down");
    if (sender.empty()) return failure(ErrorCode::invalid_argument, "the caller has no bus name");
    if (const auto* existing = find(sender))
        return failure(ErrorCode::invalid_argument,
                       "the caller " + sender + " has an agent registered already (" +
                           std::string(existing->path) + "): UnregisterAgent it first");
    Agent agent;
    agent.sender = sender;
    agent.path = path;
    try {
        agent.proxy = sdbus::createProxy(connection_, sender, path);
        // The agent's connection closing is how an app that crashed leaves: then it is unregistered.
        agent.watch = connection_.addMatch("type='signal',sender='org.freedesktop.DBus',interface='org."
                                           "freedesktop.DBus',member='NameOwnerChanged',"
                                           "arg0='" +
                                               sender + "'",
                                           [this, sender](sdbus::Message& message) {
                                               std::string name, old_owner, new_owner;
                                               message >> name >> old_owner >> new_owner;
                                               if (name == sender && new_owner.empty())
                                                   remove(sender, "left the bus");
                                           });
    } catch (const sdbus::Error& e) {
        return failure(ErrorCode::invalid_argument,
                       "cannot use the agent " + sender + " " + std::string(path) + ": " + e.getMessage());
    }
    agents_.push_back(std::move(agent));
    if (agents_.size() == 1) {
        spdlog::info("D-Bus: {} registered; it is asked about pairing requests", label(sender, path));
        for (const auto& [id, request] : waiting_)
            ask(request);
    } else {
        spdlog::info("D-Bus: {} registered; it waits in line behind {} other agent(s)", label(sender, path),
                     agents_.size() - 1);
    }
    return std::nullopt;
}

ship::hub::Result AgentManager::unregister_agent(const std::string& sender, const sdbus::ObjectPath& path) {
    retired_.clear();
    const auto* agent = find(sender);
    if (!agent || agent->path != path)
        return failure(ErrorCode::invalid_argument,
                       "no agent " + std::string(path) + " is registered by the caller " + sender);
    remove(sender, "unregistered");
    return std::nullopt;
}

void AgentManager::remove(const std::string& sender, const std::string& why) {
    auto it =
        std::find_if(agents_.begin(), agents_.end(), [&](const Agent& a) { return a.sender == sender; });
    if (it == agents_.end()) return;
    const bool was_active = it == agents_.begin();
    const std::string who = label(it->sender, it->path);
    spdlog::info("D-Bus: {} {}{}", who, why,
                 was_active && agents_.size() > 1 ? "; the next in line takes over" : "");
    // The requests it was asked end with it: a reply can no longer come, and the device asks again anyway.
    std::vector<std::uint64_t> orphaned;
    for (auto a = asked_.begin(); a != asked_.end();) {
        if (a->second.sender != sender) {
            ++a;
            continue;
        }
        a->second.call.cancel();
        orphaned.push_back(a->first);
        a = asked_.erase(a);
    }
    // Kept until a later call: this may run inside the agent's own match or reply callback.
    retired_.push_back(std::move(*it));
    agents_.erase(it);
    for (const auto id : orphaned) {
        waiting_.erase(id);
        if (auto e = pairing_.abandon_pairing(id, "the pairing agent " + sender + " " + why))
            spdlog::debug("D-Bus: request {} could not be abandoned: {}", id, e->message);
    }
    if (was_active && !agents_.empty() && !released_)
        for (const auto& [id, request] : waiting_)
            ask(request);
}

void AgentManager::release_all() {
    if (released_) return;
    released_ = true;
    for (auto& [id, asked] : asked_)
        asked.call.cancel();
    asked_.clear();
    for (auto& agent : agents_) {
        spdlog::info("D-Bus: releasing {}", label(agent.sender, agent.path));
        notify(agent, "Release", std::nullopt, std::nullopt);
    }
    agents_.clear();
}

void AgentManager::pairing_requested(const PairingRequest& request) {
    retired_.clear();
    waiting_[request.id] = request;
    ask(request);
}

void AgentManager::ask(const PairingRequest& request) {
    if (agents_.empty() || released_ || asked_.contains(request.id)) return;
    Agent& agent = agents_.front();
    const std::uint64_t now = now_us();
    // No answer by the deadline is no answer: the call ends there (at least 1 s, for a deadline just passed).
    const std::uint64_t timeout =
        std::max<std::uint64_t>(1'000'000, request.deadline_us > now ? request.deadline_us - now : 0);
    try {
        auto call = agent.proxy->createMethodCall(agent_interface, "AuthorizePeer");
        call << sdbus::ObjectPath(dbus_peer_path_prefix + request.ski) << agent_details(request);
        auto pending = agent.proxy->callMethod(
            call,
            [this, id = request.id, sender = agent.sender](
                sdbus::MethodReply& reply, const sdbus::Error* error) { answered(id, sender, reply, error); },
            timeout);
        asked_[request.id] = Asked{agent.sender, std::move(pending)};
        spdlog::info("D-Bus: asked {} about pairing request {} from SKI {}", label(agent.sender, agent.path),
                     request.id, request.ski);
    } catch (const sdbus::Error& e) {
        spdlog::warn("D-Bus: cannot ask {}: {}", label(agent.sender, agent.path), e.getMessage());
    }
}

void AgentManager::answered(std::uint64_t request, const std::string& sender, sdbus::MethodReply& reply,
                            const sdbus::Error* error) {
    if (asked_.erase(request) == 0) return; // ended meanwhile (the call was cancelled, or the agent left)
    if (error) {
        spdlog::info("D-Bus: the agent {} gave no answer to pairing request {}: {} ({})", sender, request,
                     error->getMessage(), error->getName());
        // Its connection is gone (a crash just before NameOwnerChanged): the same as leaving the bus.
        if (error->getName() == "org.freedesktop.DBus.Error.ServiceUnknown" ||
            error->getName() == "org.freedesktop.DBus.Error.NameHasNoOwner")
            remove(sender, "left the bus");
        return;
    }
    bool approve = false;
    try {
        reply >> approve;
    } catch (const sdbus::Error& e) {
        spdlog::warn(
            "D-Bus: the agent {} answered pairing request {} with something other than a boolean: {}", sender,
            request, e.getMessage());
        return;
    }
    const auto* agent = find(sender);
    const std::string who = agent ? label(sender, agent->path) : "the agent " + sender;
    if (auto e = pairing_.answer_pairing(request, approve, who))
        spdlog::info("D-Bus: {}'s answer to pairing request {} came too late: {}", who, request, e->message);
}

void AgentManager::pairing_ended(const PairingRequest& request, const std::string& reason) {
    waiting_.erase(request.id);
    auto node = asked_.extract(request.id);
    if (node.empty()) return; // never asked, or the agent's own answer ended it
    node.mapped().call.cancel();
    if (auto* agent = find(node.mapped().sender))
        notify(*agent, "Cancel", dbus_peer_path_prefix + request.ski, reason);
}

void AgentManager::notify(Agent& agent, const char* method, const std::optional<std::string>& peer,
                          const std::optional<std::string>& reason) {
    try {
        auto call = agent.proxy->createMethodCall(agent_interface, method);
        if (peer) call << sdbus::ObjectPath(*peer);
        if (reason) call << *reason;
        call.dontExpectReply(); // a notification: shipd waits for nothing from the app
        agent.proxy->callMethod(call);
    } catch (const sdbus::Error& e) {
        spdlog::debug("D-Bus: {} to {} not sent: {}", method, agent.sender, e.getMessage());
    }
}

} // namespace ship::daemon
