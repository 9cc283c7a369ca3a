// The SHIP 12.2.2 double-connection rule, decided in this one place: a pure function of the two SKIs,
// the connections' directions and the rule in force. No state, no clock, no I/O.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace ship::hub {

// outgoing = we dialled (we are the SHIP client), incoming = we accepted (we are the server).
enum class Direction { outgoing, incoming };
std::string_view to_string(Direction direction);

enum class DoubleConnectionRule {
    // SHIP 12.2.2 (default): the node with the larger SKI keeps the most recent connection and closes the
    // other; the node with the smaller SKI stays passive and acts only if both still exist after 3 s.
    spec,
    // Installed ship-go before 2026-08: keep the connection initiated by the node with the larger SKI. Both
    // sides decide at once; nobody waits.
    legacy,
    // OpenEEBUS (NIBE): no SKI rule, the first connection the peer took wins. While its own dial runs it
    // refuses an incoming link right after the upgrade, so when both links exist the peer keeps its own dial
    // (our incoming one). Never configured; learned from what a peer does (hub/peer_rules.hpp).
    first_come,
};
std::string_view to_string(DoubleConnectionRule rule);

enum class Decision {
    keep_new,      // build and register the new connection; the existing one (if any) is closed
    keep_existing, // the new connection loses: close it unbuilt
    // Smaller SKI under the spec rule: the larger-SKI peer decides. The new connection is held back unbuilt
    // (no SME runs on it, the existing one stays registered) and decided again, with passive_wait_over,
    // after `passive_wait`; if the existing connection goes first it is decided at once (then keep_new).
    defer,
};
std::string_view to_string(Decision decision);

// How long the smaller-SKI node waits before acting on a double connection itself (SHIP 12.2.2).
inline constexpr std::chrono::milliseconds passive_wait{3000};

// `existing` is the direction of the connection that owns the slot (nullopt: none, or it is closing);
// `new_direction` that of the connection asking to be registered. SKIs compare as their 40-hex text.
// A connection to ourselves (equal SKIs) always keeps the existing one.
Decision should_keep_new(std::string_view local_ski, std::string_view remote_ski,
                         std::optional<Direction> existing, Direction new_direction,
                         DoubleConnectionRule rule, bool passive_wait_over = false);

// Whether our own dial, still in flight when an incoming connection from the same SKI arrives, is to be given
// up: the rule applied as if the dial had already registered and the incoming link were the new one. Under
// the spec rule only the larger SKI gives up its dial (the smaller one's dial may be the very link the larger
// keeps) until the passive wait is over; under the legacy rule the smaller SKI's dial loses; under first-come
// our dial always loses (the peer kept its own).
bool own_dial_yields(std::string_view local_ski, std::string_view remote_ski, DoubleConnectionRule rule,
                     bool passive_wait_over = false);

} // namespace ship::hub
