// Drives one ship::Connection with a virtual clock: records every action and runs its deadline in order.
// Lets a test say "advance 45 s" and then assert the exact bytes sent and the exact close code and reason.
#pragma once

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
    TimePoint now = TimePoint{} + std::chrono::hours(1000); // not the epoch: deadlines must come from `now`

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
    // Moves the clock forward; whenever the connection's next deadline falls due on the way, the clock
    // stops there for handle_timeout, as an owner's timer would.
    void advance(Duration d);
    void advance_to(TimePoint t); // the same, to an instant (no earlier than now)
    void approve();
    void deny();
    void close_politely(std::string_view reason);
    void remove_trust();
    void pump();

    // Bytes sent since the last call.
    std::vector<Bytes> take_sent();
    // How long until the connection's next deadline, or nullopt when it has none.
    std::optional<Duration> deadline_in() const;
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

// ---- shared by the test_connection_*.cpp files ---------------------------------------------------------

inline const std::string own_id = "Demo-HEMS-123456789";

Bytes control(std::string_view json);
Bytes access_methods(std::string_view id);
Bytes own_access_methods();
Bytes handshake_error(int n);
Bytes select_version(int major, int minor);

// After CMI; the hello we sent is consumed.
void to_hello(Harness& h, Role role);
// In the protocol handshake, nothing unconsumed.
void to_protocol(Harness& h, Role role);
void to_pin(Harness& h, Role role);
void to_data(Harness& h, Role role);

// Closed exactly once with this WebSocket close, nothing after it, no deadline left.
void require_closed(const Harness& h, std::uint16_t code, const std::string& reason);
void require_open(const Harness& h);

} // namespace ship::test

// Byte vectors print as text in failure messages (type byte as '.').
namespace Catch {
template <>
struct StringMaker<ship::Bytes> {
    static std::string convert(const ship::Bytes& b) { return "\"" + ship::test::as_text(b) + "\""; }
};
} // namespace Catch
