// The one door to shipd's actions on D-Bus: every method call and property write on /org/shipd/Hub1... that
// is not a read is held until polkit (daemon/polkit.hpp) allows its action, then dispatched as if just read.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <sdbus-c++/sdbus-c++.h>

#include "bus_context.hpp"
#include "polkit.hpp"

struct sd_bus;
struct sd_bus_message;
struct sd_bus_slot;

namespace ship::daemon {

// polkit action ids (dbus/org.shipd.policy).
inline constexpr const char* action_trust = "org.shipd.trust";
inline constexpr const char* action_send_data = "org.shipd.send-data";
inline constexpr const char* action_connect = "org.shipd.connect";
inline constexpr const char* action_configure = "org.shipd.configure";
inline constexpr const char* action_pairing = "org.shipd.pairing";

// What a call needs: nullopt for reading (Get, GetAll, GetManagedObjects, Introspect, ListPeers,
// ListDiscovered, anything not ours). An unknown member of our interfaces needs org.shipd.configure, so a
// method added later is closed until it is given its own action here.
std::optional<std::string> required_action(std::string_view interface, std::string_view member,
                                           std::string_view set_interface = {},
                                           std::string_view set_property = {});

// Loop thread only. Installed as an sd-bus filter, which runs before sdbus-c++ dispatches a message: a call
// that needs an action is taken (the filter returns 1), its caller checked, and then either re-queued for
// reading (sd_bus_enqueue_for_read; the filter lets it through the second time) or answered
// org.shipd.Hub1.Error.AccessDenied. Handlers never see a call that was refused, and property setters,
// which sd-bus runs synchronously, are covered as well. After stop, calls pass unchecked: the handlers
// answer ShuttingDown.
class AuthorizationGate {
public:
    AuthorizationGate(sdbus::IConnection& connection, BusContext& context);
    ~AuthorizationGate();
    AuthorizationGate(const AuthorizationGate&) = delete;
    AuthorizationGate& operator=(const AuthorizationGate&) = delete;

    // Calls still waiting for polkit are answered ShuttingDown (before the bus connection is flushed).
    void shutdown();

private:
    static int filter(sd_bus_message* m, void* userdata, void* error);
    int take(sd_bus_message* m);
    void decided(std::uint64_t id, const Verdict& verdict);
    static void deny(sd_bus_message* m, const std::string& what, const std::string& action,
                     const Verdict& verdict);

    BusContext& context_;
    PolkitAuthority authority_;
    sd_bus* bus_ = nullptr;
    sd_bus_slot* slot_ = nullptr;
    std::uint64_t last_id_ = 0;
    struct Held {
        sd_bus_message* message;
        std::string action;
        std::string what; // "Trust", "Set AutoAccept": for messages
    };
    std::map<std::uint64_t, Held> held_; // waiting for a verdict (each holds a reference)
    std::set<sd_bus_message*> approved_; // re-queued, to pass the filter once (each a reference)
};

} // namespace ship::daemon
