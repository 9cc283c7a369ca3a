// Announces this node as `_ship._tcp` (instance name = SHIP ID, TXT per ship-protocol §7) for as long as it
// runs: it waits for a missing avahi-daemon, re-announces after a daemon restart, renames on a name
// collision, and withdraws the announcement (goodbye) on stop.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "mdns/avahi_session.hpp"
#include "mdns/txt.hpp"

namespace ship::mdns {

// Loop thread only (the session's loop). Nothing is reported after stop() has returned.
class Publisher {
public:
    // Throws std::invalid_argument when `service` cannot be announced (see check() in txt.hpp).
    Publisher(AvahiSession& session, LocalService service);
    ~Publisher(); // stops
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    // Called each time the announcement is established on the network, with the instance name
    // it holds: the SHIP ID, or an alternative such as "<SHIP ID> #2" after a collision. Set before start().
    void on_established(std::function<void(const std::string& instance)> handler);

    // Starts announcing once the session's client runs; an absent avahi-daemon is waited for.
    void start();
    // Withdraws the announcement. Safe to call twice.
    void stop();

    // The TXT `register` flag (auto-accept); peers see the change without the service being re-registered.
    void set_register(bool auto_register);
    // Replaces everything announced. A new SHIP ID or port re-registers the service under that name; other
    // changes update the TXT in place. Throws std::invalid_argument (and keeps the old service) if unusable.
    void set_service(LocalService service);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ship::mdns
