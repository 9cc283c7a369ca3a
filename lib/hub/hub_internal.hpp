// What the hub's own files (hub*.cpp) share and nobody else sees: the two holders of a link that has no
// PeerConnection (a dial on its way, a link held back or being closed) and the wording of its log lines.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "hub/hub.hpp"
#include "ship/ski.hpp"

namespace ship::hub {

// While a duplicate is held back, the peer may already talk (its CMI, hello): keep a few messages to replay.
inline constexpr std::size_t max_held_messages = 8;

inline Error error(ErrorCode code, std::string message) {
    return Error{code, std::move(message)};
}

// How a link ended, in words for logs and errors: "closed by the peer (4001 reason)".
std::string describe(const net::CloseInfo& info);

// Wall-clock microseconds, for the times D-Bus shows (LastErrorTime, ConnectedSince).
std::uint64_t now_us();

// A dial on its way: holds the scheduler's ticket (the in-flight marker) until a WebSocket opens or every
// address failed. The peer's addresses are tried one after another (hub/address_list.hpp), never two at
// once: two links in flight to one peer are a double connection of our own making.
class Hub::DialAttempt final : public net::LinkHandler {
public:
    DialAttempt(Hub& hub, std::uint64_t attempt_id, std::vector<PeerAddress> to_try, DialTicket in_flight)
        : hub_(hub)
        , id(attempt_id)
        , candidates(std::move(to_try))
        , ticket(std::move(in_flight)) {}
    void on_open(net::Link&) override { hub_.dial_opened(self.lock()); }
    void on_message(net::Link&, std::vector<std::uint8_t> message) override {
        if (early.size() < max_held_messages) early.push_back(std::move(message));
    }
    void on_closed(net::Link&, const net::CloseInfo& info) override {
        spdlog::info("dial to {} at {} failed: {}", short_ski(ticket.ski()),
                     address.host + ":" + std::to_string(address.port),
                     info.reason.empty() ? describe(info) : info.reason);
        hub_.dial_link_failed(self.lock(), info);
    }

    Hub& hub_;
    std::uint64_t id;
    std::vector<PeerAddress> candidates; // in the order to try
    std::size_t next = 0;                // the next candidate to try
    PeerAddress address;                 // the one being tried
    DialTicket ticket;
    std::shared_ptr<net::Link> link; // the dial in flight, if any (none while a host name resolves)
    bool cancelled = false;
    std::weak_ptr<DialAttempt> self;
    std::vector<std::vector<std::uint8_t>> early;
};

// A WebSocket held back unbuilt while a double connection is in doubt (`contending`: no SME runs on it, the
// peer's first messages wait in `early`), or one we are closing without an SME. Keeps the Link alive until
// its close has gone out and been reported.
class Hub::HeldLink final : public net::LinkHandler {
public:
    HeldLink(Hub& hub, std::shared_ptr<net::Link> held, Direction dir)
        : hub_(hub)
        , link(std::move(held))
        , direction(dir) {}
    // An incoming one is held at admission, before its upgrade: it can be built only from now on.
    void on_open(net::Link& l) override {
        if (!contending) return;
        const std::string ski = l.peer_ski();
        hub_.contest(ski); // may replace this handler (and drop this object): nothing after it
    }
    void on_message(net::Link& l, std::vector<std::uint8_t> message) override {
        if (early.size() >= max_held_messages) {
            l.close(ship::close_code_ship, "too many messages while held back as a double connection");
            return;
        }
        early.push_back(std::move(message));
    }
    void on_closed(net::Link& l, const net::CloseInfo& info) override { hub_.held_ended(l.id(), info); }

    Hub& hub_;
    std::shared_ptr<net::Link> link;
    Direction direction;
    std::vector<std::vector<std::uint8_t>> early;
    bool contending = false;
    SteadyTime arrived = hub_.timers_.now();
    std::optional<PeerAddress> dialled_address; // outgoing: where our dial reached it
};

} // namespace ship::hub
