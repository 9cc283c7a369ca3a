#include "authorization.hpp"

#include <systemd/sd-bus.h>

#include <array>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

namespace ship::daemon {

namespace {

constexpr std::string_view hub_interface = "org.shipd.Hub1";
constexpr std::string_view peer_interface = "org.shipd.Hub1.Peer";
constexpr std::string_view properties_interface = "org.freedesktop.DBus.Properties";

// sdbus-c++ 1.2 keeps the sd_bus_message of a Message protected and offers no sd_bus of a connection. A
// pointer to the protected member, formed through a derived class as the language allows, reads it.
struct MessageAccess : sdbus::Message {
    static sd_bus_message* raw(const sdbus::Message& message) {
        constexpr auto member = &MessageAccess::msg_;
        return static_cast<sd_bus_message*>(message.*member);
    }
};

std::string describe(std::string_view action) {
    if (action == action_trust) return "trust, untrust or block peers";
    if (action == action_send_data) return "send SPINE data";
    if (action == action_connect) return "connect or disconnect peers";
    if (action == action_pairing) return "answer pairing requests";
    return "change shipd's settings";
}

} // namespace

void AuthorizationGate::deny(sd_bus_message* m, const std::string& what, const std::string& action,
                             const Verdict& verdict) {
    const char* sender = sd_bus_message_get_sender(m);
    spdlog::info("D-Bus: {} from {} refused: polkit action {} not granted ({})", what, sender ? sender : "?",
                 action, verdict.how);
    sd_bus_reply_method_errorf(
        m, "org.shipd.Hub1.Error.AccessDenied",
        "Access denied: %s is not allowed: it needs polkit action %s (%s), which is not "
        "granted to this caller (%s)",
        what.c_str(), action.c_str(), describe(action).c_str(), verdict.how.c_str());
}

std::optional<std::string> required_action(std::string_view interface, std::string_view member,
                                           std::string_view set_interface, std::string_view set_property) {
    if (interface == properties_interface) {
        if (member != "Set") return std::nullopt; // Get, GetAll: reading
        if (set_interface == peer_interface && set_property == "Blocked") return std::string(action_trust);
        if (set_interface == hub_interface && set_property == "PairingTimeout")
            return std::string(action_pairing);
        if (set_interface == hub_interface || set_interface == peer_interface)
            return std::string(action_configure);
        return std::nullopt; // not ours: sd-bus answers it
    }
    if (interface != hub_interface && interface != peer_interface) return std::nullopt;
    if (member == "ListPeers" || member == "ListDiscovered") return std::nullopt;
    if (member == "Trust" || member == "Untrust" || member == "CancelPairing")
        return std::string(action_trust);
    if (member == "Connect" || member == "Disconnect") return std::string(action_connect);
    if (member == "SendData") return std::string(action_send_data);
    if (member == "RegisterAgent" || member == "UnregisterAgent") return std::string(action_pairing);
    return std::string(action_configure);
}

AuthorizationGate::AuthorizationGate(sdbus::IConnection& connection, BusContext& context)
    : context_(context)
    , authority_(connection) {
    const auto probe = authority_.probe_message();
    bus_ = sd_bus_message_get_bus(MessageAccess::raw(probe));
    if (!bus_) throw std::runtime_error("D-Bus: no sd-bus connection beneath sdbus-c++");
    sd_bus_ref(bus_);
    const int r = sd_bus_add_filter(
        bus_, &slot_,
        [](sd_bus_message* m, void* userdata, sd_bus_error* error) { return filter(m, userdata, error); },
        this);
    if (r < 0) {
        sd_bus_unref(bus_);
        throw std::runtime_error("D-Bus: cannot install the authorization filter");
    }
}

AuthorizationGate::~AuthorizationGate() {
    sd_bus_slot_unref(slot_);
    for (auto& [id, held] : held_)
        sd_bus_message_unref(held.message);
    for (auto* m : approved_)
        sd_bus_message_unref(m);
    sd_bus_unref(bus_);
}

void AuthorizationGate::shutdown() {
    auto held = std::exchange(held_, {});
    for (auto& [id, h] : held) {
        sd_bus_reply_method_errorf(h.message, "org.shipd.Hub1.Error.ShuttingDown", "shipd is shutting down");
        sd_bus_message_unref(h.message);
    }
}

int AuthorizationGate::filter(sd_bus_message* m, void* userdata, void*) {
    try {
        return static_cast<AuthorizationGate*>(userdata)->take(m);
    } catch (const std::exception& e) {
        spdlog::error("D-Bus: authorization check failed: {}", e.what());
        sd_bus_reply_method_errorf(m, "org.shipd.Hub1.Error.AccessDenied", "authorization check failed: %s",
                                   e.what());
        return 1;
    }
}

int AuthorizationGate::take(sd_bus_message* m) {
    if (sd_bus_message_is_method_call(m, nullptr, nullptr) <= 0) return 0;
    if (auto it = approved_.find(m); it != approved_.end()) {
        approved_.erase(it);
        sd_bus_message_unref(m); // the rqueue still holds it while it is dispatched
        return 0;
    }
    const char* path = sd_bus_message_get_path(m);
    if (!path || std::string_view(path).substr(0, std::string_view(dbus_hub_path).size()) != dbus_hub_path)
        return 0;
    const char* interface = sd_bus_message_get_interface(m);
    const char* member = sd_bus_message_get_member(m);
    if (!interface || !member) return 0;
    std::string set_interface, set_property;
    if (std::string_view(interface) == properties_interface && std::string_view(member) == "Set") {
        const char* i = nullptr;
        const char* p = nullptr;
        if (sd_bus_message_read(m, "ss", &i, &p) >= 0 && i && p) {
            set_interface = i;
            set_property = p;
        }
        sd_bus_message_rewind(m, 1);
    }
    const auto action = required_action(interface, member, set_interface, set_property);
    const std::string what = set_property.empty() ? std::string(member) : "Set " + set_property;
    if (!action || context_.stopping()) return 0;
    const char* sender = sd_bus_message_get_sender(m);
    if (!sender) {
        sd_bus_reply_method_errorf(m, "org.shipd.Hub1.Error.AccessDenied",
                                   "%s needs polkit action %s, and the caller has no bus name", member,
                                   action->c_str());
        return 1;
    }
    if (auto verdict = authority_.cached(sender, *action)) {
        if (verdict->allowed) return 0;
        deny(m, what, *action, *verdict);
        return 1;
    }
    const std::uint64_t id = ++last_id_;
    held_.emplace(id, Held{sd_bus_message_ref(m), *action, what});
    authority_.check(sender, *action, [this, id](const Verdict& verdict) { decided(id, verdict); });
    return 1;
}

void AuthorizationGate::decided(std::uint64_t id, const Verdict& verdict) {
    auto node = held_.extract(id);
    if (node.empty()) return;
    sd_bus_message* m = node.mapped().message;
    if (verdict.allowed && !context_.stopping()) {
        approved_.insert(m); // our reference moves there, until the filter sees it again
        if (sd_bus_enqueue_for_read(bus_, m) < 0) {
            approved_.erase(m);
            sd_bus_reply_method_errorf(m, "org.shipd.Hub1.Error.ShuttingDown",
                                       "shipd could not take the call");
            sd_bus_message_unref(m);
        }
        return;
    }
    if (!verdict.allowed) {
        deny(m, node.mapped().what, node.mapped().action, verdict);
    } else {
        sd_bus_reply_method_errorf(m, "org.shipd.Hub1.Error.ShuttingDown", "shipd is shutting down");
    }
    sd_bus_message_unref(m);
}

} // namespace ship::daemon
