// shipctl's side of org.shipd.Hub1: one bus connection pumped by the calling thread, the generated proxy,
// signals recorded with their arrival time (handlers only record; callers act between pumps), and every
// D-Bus failure turned into a CliError that says what to do.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "cli.hpp"
#include "hub1_proxy.hpp"

namespace ship::ctl {

// One hub signal, or "ServiceLost"/"ServiceBack" when org.shipd.Hub1 leaves or re-enters the bus.
struct HubSignal {
    std::chrono::system_clock::time_point time;
    std::string name;
    std::vector<std::string> args; // in the signal's order
};

// Peer object properties from GetManagedObjects, by SKI; values as text.
using PeerDetails = std::map<std::string, std::map<std::string, sdbus::Variant>>;

class HubClient {
public:
    // Opens the bus; CliError(exit_failure) when it cannot be reached.
    explicit HubClient(const Invocation& inv);
    ~HubClient();
    HubClient(const HubClient&) = delete;
    HubClient& operator=(const HubClient&) = delete;

    org::shipd::Hub1_proxy& hub();
    // Runs `call`, turning an sdbus::Error into a CliError; `ski` (may be empty) names the peer in messages.
    template <typename F>
    auto guarded(F&& call, const std::string& ski = {}) -> decltype(call()) {
        try {
            return call();
        } catch (const sdbus::Error& e) {
            throw translate(e, ski);
        }
    }
    CliError translate(const sdbus::Error& e, const std::string& ski) const;

    // The SKIs of every known peer and discovered service, for prefix resolution.
    std::vector<std::string> known_skis();
    // Per-peer properties (address, counters); empty if the call is refused.
    PeerDetails peer_details();

    // When --wait was given and shipd is not on the bus yet: waits for it; CliError when it does not come.
    void wait_for_service();

    // Processes bus traffic until `done()` or the deadline; returns done(). `extra_fd` (if >= 0) readable
    // wakes the wait so `done()` can look at it (the monitor's signalfd).
    bool pump_until(const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline,
                    int extra_fd = -1);
    std::vector<HubSignal> take_signals();

    const Invocation& invocation() const { return inv_; }
    // For objects shipctl exports itself (the pairing agent).
    sdbus::IConnection& connection() { return *connection_; }

private:
    class Proxy;
    void record(std::string name, std::vector<std::string> args);
    bool service_present();

    Invocation inv_;
    std::unique_ptr<sdbus::IConnection> connection_;
    std::unique_ptr<Proxy> proxy_;
    std::unique_ptr<sdbus::IProxy> bus_proxy_;
    std::vector<HubSignal> signals_;
};

} // namespace ship::ctl
