// One SHIP connection's message exchange (SME, SHIP TS 1.0.1 §13.4) for either role, with no I/O at all.
// Bytes, timer expiries and user decisions go in; the owner drains actions (send, timers, close, events).
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

namespace ship {

// client = we dialled, server = we accepted. Role is per connection, never per node.
enum class Role { client, server };

// One timer of each kind at most. ArmTimer replaces a running timer of that kind.
enum class TimerKind {
    cmi,                  // CmiTimeout: waiting for the peer's CMI
    hello_wait_for_ready, // T_hello: how long we wait for the peer to become ready (announced as `waiting`)
    hello_send_prolongation,  // when we are pending: ask the peer for more time before its deadline
    hello_prolongation_reply, // the peer must answer our prolongation request before its deadline
    protocol_handshake,       // Wait-Timer of the protocol handshake
    pin,                      // bounded wait for the peer's connectionPinState
    access_methods,           // the peer must answer our accessMethodsRequest
    close,                    // 1 s after hello abort, or maxTime after connectionClose announce
};
std::string_view to_string(TimerKind kind);

using Duration = std::chrono::milliseconds;
// The owner's monotonic clock reading, passed in; the connection never reads a clock itself.
using TimePoint = std::chrono::steady_clock::time_point;

// Defaults as in ship-protocol.md §4; tests may shorten them.
struct Timers {
    Duration cmi{10'000};
    Duration hello_init{60'000};            // T_hello_init, announced as waiting 60000
    Duration hello_inc{60'000};             // T_hello_inc, added per accepted prolongation
    Duration hello_prolong_thr_inc{30'000}; // ask for prolongation this long before the peer's deadline
    Duration hello_prolong_waiting_gap{15'000};
    Duration hello_prolong_min{1'000};   // a peer announcing less than this is treated as a hello timeout
    Duration hello_announce_min{30'000}; // never announce less (older ship-go aborts on 1 s..30 s)
    Duration protocol_handshake{10'000};
    Duration pin{10'000};
    Duration access_methods{60'000};
    Duration close_max_time{500}; // maxTime in our connectionClose announce
    Duration abort_close_delay{1'000};
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
inline constexpr std::size_t max_close_reason_bytes = 123;

namespace action {
struct Send {
    Bytes bytes; // one binary WebSocket message
};
struct ArmTimer {
    TimerKind kind;
    Duration after; // relative to the `now` of the call that produced it
};
struct CancelTimer {
    TimerKind kind;
};
// Close the WebSocket after every Send queued before it has been written.
struct CloseTransport {
    std::uint16_t code;
    std::string reason; // at most 123 bytes, cut on a UTF-8 boundary
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
struct Notice { // peer input that was ignored, with why (for logs)
    std::string text;
};
} // namespace action

using Action = std::variant<action::Send, action::ArmTimer, action::CancelTimer, action::CloseTransport,
                            action::StateChanged, action::ShipIdLearned, action::DataReceived,
                            action::Completed, action::Closed, action::Notice>;

// True if `s` can travel inside a control message without confusing ship-go's text-replacement decoder:
// valid UTF-8, no brackets or braces, no quotes, backslashes or control characters, not containing
// "datagram".
bool is_safe_control_string(std::string_view s);

class Connection {
public:
    // Throws std::invalid_argument if config.own_ship_id is empty or not is_safe_control_string.
    explicit Connection(ConnectionConfig config);

    // The WebSocket is up. Client: sends CMI. Both: start the CMI timer.
    void open(Role role, TimePoint now);
    // One complete WebSocket message (reassembled by the transport).
    void receive(std::span<const std::uint8_t> message, TimePoint now);
    void timer_fired(TimerKind kind, TimePoint now);
    // The WebSocket or TCP/TLS ended without us asking (peer close, error).
    void transport_closed(std::string_view reason);

    // The user's trust decision while hello is pending (awaiting_trust()).
    void approve(TimePoint now);
    void deny();

    // Plain JSON (e.g. {"datagram":{...}}) converted to EEBUS form and sent as a SHIP data message.
    // Returns an error text (invalid JSON, not in data exchange) or nullopt when queued.
    std::optional<std::string> send_data(std::string_view plain_json);
    // Polite close: connectionClose announce in data exchange, else WebSocket close 4001 with `reason`.
    void close(std::string_view reason);
    // Trust was withdrawn: announce with reason removedConnection in data exchange, else close 4500.
    void remove_trust();

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
