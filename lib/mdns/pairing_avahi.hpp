// The SHIP Pairing Service on the network through the shared Avahi session: a browser that resolves every
// `_shippairing._tcp` instance and hands its TXT strings on (devA), and a publisher for one addCu request of
// our own (devZ), announced on a port nothing listens on and withdrawn with a goodbye.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mdns/avahi_session.hpp"

namespace ship::mdns {

// Loop thread only. The handler runs from inside Avahi's callbacks; it must not stop the browser (post that).
class PairingBrowser {
public:
    // An instance appeared or its TXT changed (a corrected request reuses the name with new content).
    using Handler = std::function<void(const std::string& instance, const std::vector<std::string>& txt)>;
    PairingBrowser(AvahiSession& session, Handler on_record);
    ~PairingBrowser(); // stops
    PairingBrowser(const PairingBrowser&) = delete;
    PairingBrowser& operator=(const PairingBrowser&) = delete;

    void start(); // browses once the session's client runs
    void stop();  // safe to call twice
    bool running() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Loop thread only.
class PairingPublisher {
public:
    explicit PairingPublisher(AvahiSession& session);
    ~PairingPublisher(); // withdraws
    PairingPublisher(const PairingPublisher&) = delete;
    PairingPublisher& operator=(const PairingPublisher&) = delete;

    // Announces (or replaces) the record under `instance`; a name collision picks an alternative.
    void announce(std::string instance, std::vector<std::string> txt);
    void withdraw(); // goodbye; safe to call twice
    bool announcing() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ship::mdns
