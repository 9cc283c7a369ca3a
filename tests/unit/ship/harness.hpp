// Drives one ship::Connection with a virtual clock: records every action and fires armed timers in order.
// Lets a test say "advance 45 s" and then assert the exact bytes sent and the exact close code and reason.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "ship/connection.hpp"

namespace ship::test {

ConnectionConfig trusted_config(std::string own_ship_id = "Demo-HEMS-123456789");
// An untrusted peer while waiting for trust is allowed: we say hello pending.
ConnectionConfig pending_config(std::string own_ship_id = "Demo-HEMS-123456789");

class Harness {
public:
    explicit Harness(ConnectionConfig config = trusted_config());

    Connection conn;
    TimePoint now{};
    std::map<TimerKind, TimePoint> timers; // armed timers and when they fire

    // Everything the connection did, in order.
    std::vector<Action> log;
    std::vector<Bytes> sent;
    std::vector<action::StateChanged> states;
    std::vector<std::string> data;
    std::vector<std::string> notices;
    std::vector<std::string> ship_ids;
    std::optional<action::CloseTransport> close;
    std::optional<std::string> closed_reason;
    int completed = 0;
    int closed_count = 0;
    bool acted_after_closed = false;

    void open(Role role);
    void receive(const Bytes& bytes);
    void receive(MessageType type, std::string_view json);
    // Moves the clock forward, firing every timer that falls due on the way at its own instant.
    void advance(Duration d);
    void approve();
    void pump();

    // Bytes sent since the last call.
    std::vector<Bytes> take_sent();
    std::optional<Duration> timer_left(TimerKind kind) const;
    std::optional<PeerState> last_state() const;
    std::string last_error() const;

private:
    std::size_t sent_seen_ = 0;
};

// The vector bytes of a SHIP control message by name (ship-messages.json).
Bytes vec(const std::string& name);
// A hello as the peer might send it, type byte included.
Bytes hello(std::string_view json_body);
std::string as_text(const Bytes& b);

} // namespace ship::test

// Byte vectors print as text in failure messages (type byte as '.').
namespace Catch {
template <>
struct StringMaker<ship::Bytes> {
    static std::string convert(const ship::Bytes& b) { return "\"" + ship::test::as_text(b) + "\""; }
};
} // namespace Catch
