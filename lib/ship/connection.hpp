// One SHIP connection's message exchange (SME, SHIP TS 1.0.1 §13.4) for either role, with no I/O at all.
// Bytes, clock readings and user decisions go in; out come actions (send, close, events) and one deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ship/frame.hpp"
#include "ship/peer_state.hpp"
#include "util/role.hpp"

namespace ship {

using Duration = std::chrono::milliseconds;
// The owner's monotonic clock reading, passed in; the connection never reads a clock itself.
using TimePoint = std::chrono::steady_clock::time_point;

// Defaults as in ship-protocol.md §4; tests may shorten them. § numbers are SHIP TS 1.0.1.
struct Timers {
    Duration cmi{10'000};                       // CmiTimeout, §13.4.3 (10-30 s; CMI_003/004 need it short)
    Duration hello_init{60'000};                // T_hello_init, §13.4.4.1.3, announced as waiting 60000
    Duration hello_inc{60'000};                 // T_hello_inc, §13.4.4.1.3, added per accepted prolongation
    Duration hello_prolong_thr_inc{30'000};     // T_hello_prolong_thr_inc, §13.4.4.1.3: ask this long before
    Duration hello_prolong_waiting_gap{15'000}; // T_hello_prolong_waiting_gap, §13.4.4.1.3
    Duration hello_prolong_min{1'000};          // T_hello_prolong_min, §13.4.4.1.3: a shorter waiting aborts
    Duration hello_announce_min{30'000}; // ours, not SHIP's: older ship-go aborts on 1 s <= waiting < 30 s
    Duration protocol_handshake{10'000}; // Wait-Timer of the protocol handshake, §13.4.4.2.3
    Duration pin{10'000};                // §13.4.4.3 sets no bound; ours (the Wait-Timer's 10 s) so no hang
    Duration access_methods{60'000};     // §13.4.6 sets no bound; ours, ship-protocol.md §4
    Duration close_max_time{500};        // maxTime of our connectionClose announce, §13.4.7
    Duration abort_close_delay{1'000};   // §13.4.4.1.3 SME_HELLO_ABORT: close after `aborted` (as ship-go)
};

struct ConnectionConfig {
    std::string own_ship_id;              // sent in accessMethods; must satisfy is_safe_control_string
    bool peer_trusted = false;            // SKI trusted or auto-accept on: hello `ready`
    bool allow_waiting_for_trust = false; // untrusted: hello `pending` if true, else abort
    std::optional<std::string> known_peer_ship_id; // a different id in the peer's accessMethods is an error
    Timers timers;
};

// WebSocket close codes SHIP uses.
inline constexpr std::uint16_t close_code_ship = 4001;
inline constexpr std::uint16_t close_code_hello_rejected = 4452;
inline constexpr std::uint16_t close_code_trust_removed = 4500;

namespace action {
struct Send {
    Bytes bytes; // one binary WebSocket message
};
// Close the WebSocket after every Send queued before it has been written.
struct CloseTransport {
    std::uint16_t code;
    std::string reason; // at most util::max_close_reason_bytes, cut on a UTF-8 boundary
    // Set when the peer asked for this close and we only carry it out: what it said, e.g. "SHIP
    // connectionClose, reason removedConnection" or "SHIP hello abort". Empty: the close is ours.
    std::string peer_request = {};
};
struct StateChanged {
    PeerState state;
    std::string error; // empty unless state is error or remote_denied_trust
};
struct ShipIdLearned {
    std::string ship_id; // from the peer's accessMethods
};
struct DataReceived {
    std::string json; // plain JSON payload, e.g. {"datagram":{...}}
};
struct Completed {}; // entered data exchange: send_data is allowed from now on
struct Closed {      // terminal: comes exactly once; no action follows it
    std::string reason;
};
struct Notice { // peer input that was ignored or taken leniently, with why (for logs)
    std::string text;
};
} // namespace action

using Action = std::variant<action::Send, action::CloseTransport, action::StateChanged, action::ShipIdLearned,
                            action::DataReceived, action::Completed, action::Closed, action::Notice>;

// True if `s` can travel inside a control message without confusing ship-go's text-replacement decoder:
// valid UTF-8, no brackets or braces, no quotes, backslashes or control characters, not containing
// "datagram".
bool is_safe_control_string(std::string_view s);

class Connection {
public:
    // Throws std::invalid_argument if config.own_ship_id is empty or not is_safe_control_string.
    explicit Connection(ConnectionConfig config);

    // Every `now` is a reading of the owner's monotonic clock, never earlier than the one before; each SHIP
    // timer started by a call runs from that call's `now`.

    // The WebSocket is up. Client: sends CMI. Both: start the CMI timer.
    void open(Role role, TimePoint now);
    // One complete WebSocket message (reassembled by the transport).
    void receive(std::span<const std::uint8_t> message, TimePoint now);
    // The WebSocket or TCP/TLS ended without us asking (peer close, error).
    void transport_closed(std::string_view reason);

    // The earliest pending SHIP timer as an absolute time, or nullopt when none runs (closed, or in data
    // exchange with nothing awaited). Changes only through the calls of this class.
    std::optional<TimePoint> next_deadline() const;
    // Runs every SHIP timer whose deadline is <= now, earliest first; a call before next_deadline() does
    // nothing. Call it when the deadline passes (late is fine), then take the actions.
    void handle_timeout(TimePoint now);

    // The user's trust decision while hello is pending (awaiting_trust()). `reason` (empty: "trust denied
    // by the user") says why in StateChanged.error and the close reason, e.g. an expired pairing request.
    void approve(TimePoint now);
    void deny(TimePoint now, std::string_view reason = {});

    // Plain JSON (e.g. {"datagram":{...}}) converted to EEBUS form and sent as a SHIP data message.
    // Returns an error text (invalid JSON, not in data exchange) or nullopt when queued.
    std::optional<std::string> send_data(std::string_view plain_json);
    // A data message already made by msg::encode_data or encode_spine_datagram (the caller judged its size):
    // queued as it is.
    // Returns an error text (not in data exchange) or nullopt when queued.
    std::optional<std::string> send_data_message(Bytes message);
    // Polite close: connectionClose announce in data exchange, else WebSocket close 4001 with `reason`.
    void close(std::string_view reason, TimePoint now);
    // Trust was withdrawn: announce with reason removedConnection in data exchange, else close 4500.
    void remove_trust(TimePoint now);
    // We are going away (daemon stop): as close(), but the transport closes right after the announce, without
    // waiting for the confirm; the peer has been told, and a stop must not wait on thousands of peers.
    void leave(std::string_view reason);

    std::vector<Action> take_actions();

    bool awaiting_trust() const;         // hello pending, waiting for approve()/deny()
    bool in_data_exchange() const;       // send_data allowed
    bool closed() const;                 // Closed was emitted
    std::string_view state_name() const; // the internal SHIP state, e.g. "hello-ready-listen"
    std::optional<Role> role() const;

    ~Connection();
    Connection(Connection&&) noexcept;
    Connection& operator=(Connection&&) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ship
