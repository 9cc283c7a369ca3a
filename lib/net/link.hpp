// One SHIP WebSocket (TLS, subprotocol `ship`, binary messages only) as its owner sees it: whole messages in,
// whole messages out, exactly one `closed` per opened or dialled Link, nothing after it, safe to drop any
// time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/role.hpp"

namespace ship::net {

class Link;

// WebSocket close codes the transport itself uses (SHIP's own, 4001/4452/4500, come from lib/ship).
inline constexpr std::uint16_t close_normal = 1000;
inline constexpr std::uint16_t close_going_away = 1001;
inline constexpr std::uint16_t close_unsupported_data = 1003; // a text frame: SHIP is binary only
inline constexpr std::uint16_t close_no_close_frame = 1006;   // reported, never sent: the peer just vanished
inline constexpr std::uint16_t close_message_too_big = 1009;
inline constexpr std::size_t ship_max_message_bytes = 102400; // SHIP's 100 KiB limit

// How a Link ended. `code` and `reason` are what we sent (by == local), what the peer sent (by == peer), or
// 1006 with what went wrong underneath (by == transport: no close frame, TLS error, ping timeout, dial
// failure, cancelled dial).
struct CloseInfo {
    enum class By { local, peer, transport };
    std::uint16_t code = close_no_close_frame;
    std::string reason;
    By by = By::transport;
    bool was_open = false;  // the WebSocket had been established (false: the dial never got there)
    bool timed_out = false; // a dial that did not open within ClientConfig::connect_timeout
};
std::string_view to_string(CloseInfo::By by);

// Implemented by the owner. Called on the strand, never from inside a Link call of the same Link (so a
// handler may call send/close and may drop its Link). After on_closed nothing else arrives for that Link.
class LinkHandler {
public:
    virtual ~LinkHandler() = default;
    virtual void on_open(Link& link) = 0;
    // One whole binary message (fragments reassembled), any length from 0 to the limit: judging it (SHIP
    // calls messages shorter than 2 bytes a protocol error) is the owner's business.
    virtual void on_message(Link& link, std::vector<std::uint8_t> message) = 0;
    virtual void on_closed(Link& link, const CloseInfo& info) = 0;
};

// Ping policy: a PING once `ping_after` has passed since the last PONG (or the opening), hang up once
// `hang_up_after` has. Data does not count, as in ship-go. Whole seconds: one coarse sweep serves every
// Link (net/keep_alive.hpp), so a ping may go out up to a second late.
struct PingPolicy {
    std::chrono::seconds ping_after{50};
    std::chrono::seconds hang_up_after{60};
};

// Settings both ends share.
struct LinkSettings {
    PingPolicy ping;
    std::size_t max_message_bytes = ship_max_message_bytes; // larger ⇒ close 1009
    // 0: each message goes out as one frame (lws and the kernel split the bytes, not the WebSocket). Else
    // messages above this are sent as fragments of this size, as ship-go does above 4096 bytes.
    std::size_t send_fragment_bytes = 0;
    // A Link closing (our close frame queued behind unsent messages) is cut after this long.
    std::chrono::seconds close_bound{5};
};

// Strand only, every member. Owned by the owner through shared_ptr; the transport keeps only its id. The
// interface is what an owner (the hub, a test, the bench) may rely on; lib/net's libwebsockets Link is
// `LwsLink` (net/lws_link.hpp), and unit tests drive owners with links of their own.
class Link : public std::enable_shared_from_this<Link> {
public:
    Link() = default;
    virtual ~Link() = default; // a still-open Link is cut with 1001 "going away", without callbacks
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;

    virtual std::uint64_t id() const = 0;
    virtual ship::Role role() const = 0;
    // The peer's SKI (40 lower-case hex) computed from its certificate during the TLS handshake. For a
    // dialled Link this is the expected SKI, which the handshake has verified once on_open arrives.
    virtual const std::string& peer_ski() const = 0;
    // SHA-256 of the peer's certificate (DER), 64 upper-case hex: how the SHIP Pairing Service names a
    // device before its SKI is known. Set with peer_ski().
    virtual const std::string& peer_fingerprint() const = 0;
    virtual const std::string& remote_address() const = 0; // "192.0.2.1:4711", "[fe80::1%eth0]:4711"
    virtual const std::string& path() const = 0;           // request path (the one that worked)
    virtual bool is_open() const = 0;
    virtual bool is_closed() const = 0;

    // One binary message; copied, queued, written when the socket is writable. False (and dropped) unless
    // the Link is open and not closing.
    virtual bool send(std::span<const std::uint8_t> message) = 0;
    virtual std::size_t queued_messages() const = 0;

    // Idempotent, never blocks, never calls back synchronously. An open Link writes what is queued, then a
    // close frame with `code` and `reason` (cut to 123 bytes); a dial in flight is cancelled. on_closed
    // follows (by == local), asynchronously.
    virtual void close(std::uint16_t code, std::string_view reason) = 0;
    // As close(), but once what is queued is written the TCP connection closes without a WebSocket close
    // handshake; for a peer already told otherwise (SHIP connectionClose at daemon stop). lws keeps every
    // link awaiting a close ack in one sorted timeout list: 10 000 at once cost O(n²), seconds.
    virtual void close_at_once(std::uint16_t code, std::string_view reason) = 0;

    // Ends the Link without a close frame (TCP/TLS close only), the way OpenEEBUS refuses a link and ship-go
    // drops a loser; for peers scripted after those stacks. on_closed follows (by == local, code 1006).
    virtual void abort(std::string_view reason) = 0;

    // Asks the peer for a sign of life now: a PING, and no PONG within `bound` ends the Link as a ping
    // timeout does (by == transport, no close frame). For a link that may be dead while a newer one waits.
    virtual void probe(std::chrono::milliseconds bound) = 0;

    // The handler may be replaced (e.g. by a session adapter taking over); null silences the Link.
    virtual void set_handler(LinkHandler* handler) = 0;
};

} // namespace ship::net
