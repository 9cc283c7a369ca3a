// What applications (the D-Bus service, shipctl through it) may ask of the hub, and what it tells them.
// Every call and every event runs on the strand; other threads reach the hub only through Strand::post.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ship/peer_state.hpp"

namespace ship::hub {

using ship::PeerState; // ship-protocol §8 names, lib/ship/peer_state.hpp

struct PeerInfo {
    std::string ski;
    std::string ship_id;
    PeerState state = PeerState::none;
    std::string error;
    bool trusted = false;
    bool connected = false; // a registered, alive connection in data exchange owns the slot
    std::string brand, model, type;
    std::string host;
    std::uint16_t port = 0;
    std::uint64_t connected_since_us = 0; // µs since the epoch, 0 when not connected
    std::uint64_t messages_in = 0, messages_out = 0, bytes_in = 0, bytes_out = 0; // SPINE data only
    // The last failure with this peer (a dial, or a connection that ended in error), and when (µs since the
    // epoch, 0 = none yet). Kept when the next attempt succeeds: it says what went wrong last time.
    std::string last_error;
    std::uint64_t last_error_time_us = 0;
    std::uint64_t pairing_deadline_us = 0; // µs since the epoch while a pairing request waits, else 0
    bool blocked = false;                  // refused inside TLS, never dialled (persisted)
};

struct DiscoveredService {
    std::string ski, ship_id, brand, model, type, serial;
    std::string host;                   // what to show: the best address (IPv4 preferred), else the host name
    std::string host_name;              // the SRV target, e.g. "wallbox.local" ("" if none)
    std::vector<std::string> addresses; // best first: IPv4, global IPv6, IPv6 link-local with its zone
    std::uint16_t port = 0;
    std::string path;
    std::vector<int> categories;
    bool auto_register = false; // TXT `register`
};

// Named like the D-Bus errors org.shipd.Hub1.Error.<Name>.
enum class ErrorCode {
    invalid_ski,
    unknown_peer,
    not_trusted,
    not_connected,
    invalid_json,
    invalid_argument,
    shutting_down,
    connect_failed, // a Connect's dial or handshake failed; the message says why
    timeout,        // a Connect did not reach data exchange in time
    blocked
};
std::string_view to_string(ErrorCode code); // "InvalidSKI", "UnknownPeer", ...

struct Error {
    ErrorCode code;
    std::string message; // names the offending value
};
using Result = std::optional<Error>; // nullopt = done

// Emitted by the hub. peer_connected/peer_disconnected come only from registry-confirmed slot ownership:
// per SKI they strictly alternate, starting with peer_connected.
class HubEvents {
public:
    virtual ~HubEvents() = default;
    virtual void peer_connected(const std::string& ski) = 0;
    virtual void peer_disconnected(const std::string& ski, const std::string& reason) = 0;
    virtual void peer_state_changed(const std::string& ski, PeerState state, const std::string& error) = 0;
    virtual void peer_ship_id_changed(const std::string& ski, const std::string& ship_id) = 0;
    virtual void discovered_changed() = 0;
    virtual void data_received(const std::string& ski, const std::string& json) = 0;
    // The set of known peers (trusted, discovered, connected or pairing) gained or lost one, or one's
    // properties changed: the per-peer D-Bus objects follow these.
    virtual void peer_added(const PeerInfo& peer) = 0;
    virtual void peer_changed(const PeerInfo& peer) = 0;
    virtual void peer_removed(const std::string& ski) = 0;
};

// SKI arguments are taken as users type them and normalised (ship::normalize_ski); a bad one is
// ErrorCode::invalid_ski. After stop is requested every mutating call returns ErrorCode::shutting_down.
class HubApi {
public:
    virtual ~HubApi() = default;

    virtual std::string local_ski() const = 0;
    virtual std::string ship_id() const = 0;
    virtual std::uint16_t port() const = 0;
    virtual std::string qr_code() const = 0; // SHIP;SKI:..;ID:..;...;ENDSHIP;

    virtual bool auto_accept() const = 0;
    virtual void set_auto_accept(bool on) = 0;
    virtual bool wait_for_trust() const = 0;
    virtual void set_wait_for_trust(bool on) = 0;

    virtual std::vector<PeerInfo> list_peers() const = 0;
    virtual std::optional<PeerInfo> peer(std::string_view ski) const = 0;
    virtual std::vector<DiscoveredService> list_discovered() const = 0;

    virtual Result trust(std::string_view ski) = 0;
    virtual Result untrust(std::string_view ski) = 0;
    virtual Result connect(std::string_view ski, std::string_view host, std::uint16_t port) = 0;
    virtual Result disconnect(std::string_view ski, std::string_view reason) = 0;
    virtual Result cancel_pairing(std::string_view ski) = 0;
    virtual Result send_data(std::string_view ski, std::string_view json) = 0;

    // `done` runs on the strand, never inside this call, once every change of persistent state (trust,
    // SHIP IDs, addresses) made before the call is on disk: nullopt, or ErrorCode::invalid_argument naming
    // the write that failed. Mutators return before their change is durable; whoever acknowledges one to a
    // user waits for this first.
    virtual void when_persisted(std::function<void(Result)> done) = 0;

    // What the SHIP server is bound to, e.g. "127.0.0.1:4711", "[::1]:4711", "[::]:4711" (every address).
    virtual std::vector<std::string> listen_addresses() const = 0;

    // Connect that reports its outcome. Returns an error at once (then `done` is never called), or nullopt
    // and later runs `done` exactly once on the strand, never inside this call: nullopt as soon as a
    // connection with `ski` is in data exchange (at once if one is), ErrorCode::connect_failed with the
    // dial's or the handshake's reason, ErrorCode::timeout, or shutting_down. `host` "" and `port` 0: the
    // address already known (announced or stored). A given address is dialled now but stored only once a
    // connection to it reached data exchange: a failed dial never replaces a working address.
    using ConnectDone = std::function<void(Result)>;
    virtual Result connect_and_report(std::string_view ski, std::string_view host, std::uint16_t port,
                                      ConnectDone done) = 0;
};

} // namespace ship::hub
