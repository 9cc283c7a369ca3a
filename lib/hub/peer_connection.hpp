// One registered SHIP connection: a Link (the socket) driving a ship::Connection (the SME) with one timer
// on its next deadline, and what the hub needs to know about it. It reports to its Owner; it decides nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hub/connection_handle.hpp"
#include "hub/hub_api.hpp"
#include "hub/peer_address.hpp"
#include "hub/timers.hpp"
#include "net/link.hpp"
#include "ship/connection.hpp"

namespace ship::hub {

class PeerConnection;

// The hub, as a connection sees it. Strand only.
class PeerConnectionOwner {
public:
    virtual ~PeerConnectionOwner() = default;
    virtual void on_state(PeerConnection& connection, PeerState state, const std::string& error) = 0;
    virtual void on_ship_id(PeerConnection& connection, const std::string& ship_id) = 0;
    virtual void on_completed(PeerConnection& connection) = 0;
    virtual void on_data(PeerConnection& connection, const std::string& json) = 0;
    // The socket is gone; nothing else comes from this connection.
    virtual void on_ended(PeerConnection& connection, const net::CloseInfo& info) = 0;
};

// SPINE data messages only (SHIP's handshake and control messages are not counted); bytes are those of the
// SHIP messages carrying them (type byte and EEBUS JSON).
struct PeerStats {
    std::uint64_t messages_in = 0, messages_out = 0, bytes_in = 0, bytes_out = 0;
};

// What a SHIP message may be at most: ship-go's (and our) receive limit, 100 KiB.
inline constexpr std::size_t max_ship_message_bytes = 102400;

class PeerConnection final : public ConnectionHandle, public net::LinkHandler {
public:
    // Takes over `link` (already upgraded, or about to open for an incoming one). Messages that arrived while
    // the link was parked unbuilt are replayed by start().
    // `clock` gives the time and runs the SME's one deadline: it must keep firing while the daemon stops
    // (the bounds of a polite close), e.g. StrandTimers of kind `shutdown`.
    PeerConnection(TimerService& clock, PeerConnectionOwner& owner, std::shared_ptr<net::Link> link,
                   Direction direction, ship::ConnectionConfig config);
    ~PeerConnection() override;

    // Starts the SME (the WebSocket is open): role from the direction; then replays `early` messages.
    void start(std::vector<std::vector<std::uint8_t>> early = {});

    // The user's answers while hello is pending.
    bool awaiting_trust() const { return sme_.awaiting_trust(); }
    void approve();
    void deny(std::string_view reason = {}); // reason: see ship::Connection::deny
    // Trust withdrawn: SHIP close with removedConnection (data exchange) or WebSocket 4500. Owns the close.
    void remove_trust();
    // One SPINE message, already a SHIP data message (ship::msg::encode_spine_datagram of `json_bytes` of
    // JSON): refused without sending anything when it would exceed `max_ship_message_bytes`
    // (invalid_argument, naming the size) — a peer drops the whole connection for a larger one. nullopt
    // when queued.
    std::optional<Error> send_data(ship::Bytes message, std::size_t json_bytes);
    // The same from plain SPINE JSON, checked and encoded here (invalid_json when it is not a datagram): for
    // owners that hold no encoded message already (the bench load generator, tests).
    std::optional<Error> send_data(std::string_view json);

    // Who ended the connection and why, in words for logs and PeerDisconnected: our own close (its
    // reason), the peer's SHIP request (connectionClose with its reason, hello abort), or else `fallback`
    // (what the WebSocket saw).
    std::string end_description(const std::string& fallback) const;

    // A double connection is in doubt: the peer's messages wait unread (so neither side gets further on this
    // link, and it cannot reach data exchange only to be dropped) until resume() or the close. Bounded like a
    // held link's: more than a few messages end the link.
    void pause();
    void resume();
    bool paused() const noexcept { return paused_; }
    // Asks the peer for a sign of life (net::Link::probe): no PONG within `bound` ends the link.
    void probe(std::chrono::milliseconds bound) { link_->probe(bound); }
    void set_arrived(std::chrono::steady_clock::time_point when) noexcept { arrived_ = when; }
    // The peer has sent SHIP messages on this link (delivered or waiting while paused).
    bool peer_spoke() const noexcept { return spoke_; }
    // When the link was upgraded: accepted (incoming) or opened (outgoing).
    std::chrono::steady_clock::time_point arrived() const noexcept { return arrived_; }

    bool in_data_exchange() const override { return sme_.in_data_exchange(); }
    bool started() const noexcept { return started_; }
    const net::Link& link() const { return *link_; }
    std::uint64_t id() const override { return link_->id(); }
    PeerState state() const noexcept { return state_; }
    const std::string& error() const noexcept { return error_; }
    const PeerStats& stats() const noexcept { return stats_; }
    std::string_view ship_state() const { return sme_.state_name(); }

    // Where we dialled it (outgoing only): remembered in the trust store once the handshake completes.
    std::optional<PeerAddress> dialled_address;

    // net::LinkHandler
    void on_open(net::Link& link) override;
    void on_message(net::Link& link, std::vector<std::uint8_t> message) override;
    void on_closed(net::Link& link, const net::CloseInfo& info) override;

protected:
    void do_close(std::uint16_t code, std::string_view reason) override;
    void do_leave(std::string_view reason, bool closing) override;

private:
    void run_actions();
    void arm_deadline();
    void deliver(std::vector<std::uint8_t> message);

    PeerConnectionOwner& owner_;
    std::shared_ptr<net::Link> link_;
    ship::Connection sme_;
    // The SME's bounds of a polite close (maxTime, the 1 s after hello abort) must still fire while the
    // daemon drains at stop. Its handshake deadlines may fire then too; they only end a connection.
    TimerService& clock_;
    TimerService::Id deadline_timer_ = 0;
    std::optional<ship::TimePoint> armed_for_; // the deadline deadline_timer_ runs to, if it runs
    bool started_ = false;
    bool leaving_ = false;   // the daemon stops: nothing waits for the peer's answer
    bool announced_ = false; // leaving after a SHIP connectionClose announce: no WebSocket close handshake
    bool ended_ = false;
    bool paused_ = false;
    std::vector<std::vector<std::uint8_t>> queued_; // while paused
    std::chrono::steady_clock::time_point arrived_;
    PeerState state_ = PeerState::none;
    std::string error_;
    PeerStats stats_;
    std::size_t receiving_bytes_ = 0; // size of the message the SME is handling (counted if it is data)
    bool spoke_ = false;              // any SHIP message arrived on this link (delivered or queued)
    std::string closed_by_us_;        // our reason, once we started the close
    std::string closed_by_peer_;      // what the peer asked for, once it did
};

} // namespace ship::hub
