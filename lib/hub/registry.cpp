#include "hub/registry.hpp"

#include <utility>

#include <spdlog/spdlog.h>

namespace ship::hub {

Registry::Registry(std::string local_ski, DoubleConnectionRule rule, std::stop_token stop)
    : local_ski_(std::move(local_ski))
    , rule_(rule)
    , stop_(std::move(stop)) {}

const Registry::Slot* Registry::alive_slot(const std::string& ski) const {
    auto it = slots_.find(ski);
    if (it == slots_.end() || !it->second.owner->alive()) return nullptr;
    return &it->second;
}

Decision Registry::decide(const std::string& ski, Direction direction, bool passive_wait_over) const {
    const Slot* slot = alive_slot(ski);
    std::optional<Direction> existing;
    if (slot) existing = slot->owner->direction();
    return should_keep_new(local_ski_, ski, existing, direction, rule_, passive_wait_over);
}

Registry::SwapResult Registry::swap(const std::string& ski, Direction direction, const Build& build,
                                    bool passive_wait_over) {
    SwapResult result;
    if (stop_.stop_requested()) {
        result.stopping = true;
        result.kept = find(ski);
        return result;
    }
    result.decision = decide(ski, direction, passive_wait_over);
    if (result.decision != Decision::keep_new) {
        result.kept = find(ski);
        spdlog::debug("double connection with SKI {}: {} {} connection ({} rule)", ski,
                      to_string(result.decision), to_string(direction), to_string(rule_));
        return result;
    }

    Handle built = build();
    if (!built) {
        result.kept = find(ski);
        return result;
    }

    Slot fresh{std::move(built), false};
    auto [it, inserted] = slots_.try_emplace(ski, fresh);
    if (!inserted) {
        Slot old = std::exchange(it->second, std::move(fresh));
        result.lost_connected = old.connected;
        if (old.owner->alive()) {
            result.evicted = std::move(old.owner);
            spdlog::info("double connection with SKI {}: keeping the new {} connection, closing the {} one "
                         "({} rule)",
                         ski, to_string(direction), to_string(result.evicted->direction()), to_string(rule_));
        }
    }
    result.kept = it->second.owner;
    return result;
}

bool Registry::confirm_connected(const std::string& ski, const ConnectionHandle& connection) {
    auto it = slots_.find(ski);
    if (it == slots_.end() || it->second.owner.get() != &connection || !connection.alive()) return false;
    return !std::exchange(it->second.connected, true);
}

Registry::Removal Registry::remove_if_matches(const std::string& ski, const ConnectionHandle& connection) {
    auto it = slots_.find(ski);
    if (it == slots_.end() || it->second.owner.get() != &connection) return {};
    Removal removal{true, it->second.connected};
    slots_.erase(it);
    return removal;
}

bool Registry::is_connected(const std::string& ski) const {
    return alive_slot(ski) != nullptr;
}

bool Registry::is_confirmed(const std::string& ski) const {
    const Slot* slot = alive_slot(ski);
    return slot && slot->connected;
}

Registry::Handle Registry::find(const std::string& ski) const {
    const Slot* slot = alive_slot(ski);
    return slot ? slot->owner : nullptr;
}

std::vector<Registry::Released> Registry::take_all() {
    std::vector<Released> all;
    all.reserve(slots_.size());
    for (auto& [ski, slot] : slots_)
        all.push_back({std::move(slot.owner), slot.connected});
    slots_.clear();
    return all;
}

} // namespace ship::hub
