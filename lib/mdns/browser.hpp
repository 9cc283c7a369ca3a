// Finds SHIP peers: browses and resolves `_ship._tcp`, keeps one entry per SKI (merged over interfaces and IP
// protocols, addresses best first), leaves out our own SKI and drops a peer on its goodbye or when it
// expires.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mdns/avahi_session.hpp"
#include "mdns/txt.hpp"

namespace ship::mdns {

// Loop thread only (the session's loop). The handler runs from inside Avahi's callbacks: it must not stop
// the browser. Nothing is reported after stop() has returned.
class Browser {
public:
    // The whole current view, sorted by SKI, each time anything in it changes (a peer appears, goes, or
    // changes a TXT field or address). Entries whose TXT lacks what SHIP needs are left out, with a logged
    // reason. While avahi-daemon is away (restart) the view is empty; it fills again when the daemon is back.
    using ChangedHandler = std::function<void(std::vector<ServiceEntry> peers)>;

    // own_ski: ours (any normalize_ski form), never reported; empty to report every peer. Throws
    // std::invalid_argument for a malformed SKI.
    Browser(AvahiSession& session, std::string own_ski, ChangedHandler on_changed);
    ~Browser(); // stops
    Browser(const Browser&) = delete;
    Browser& operator=(const Browser&) = delete;

    // Browses once the session's client runs; an absent avahi-daemon is waited for.
    void start();
    void stop(); // safe to call twice

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ship::mdns
