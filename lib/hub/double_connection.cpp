#include "hub/double_connection.hpp"

namespace ship::hub {

std::string_view to_string(Direction direction) {
    return direction == Direction::outgoing ? "outgoing" : "incoming";
}

std::string_view to_string(DoubleConnectionRule rule) {
    switch (rule) {
    case DoubleConnectionRule::spec:
        return "spec";
    case DoubleConnectionRule::legacy:
        return "legacy";
    case DoubleConnectionRule::first_come:
        return "first-come";
    }
    return "?";
}

std::string_view to_string(Decision decision) {
    switch (decision) {
    case Decision::keep_new:
        return "keep new";
    case Decision::keep_existing:
        return "keep existing";
    case Decision::defer:
        return "defer";
    }
    return "?";
}

Decision should_keep_new(std::string_view local_ski, std::string_view remote_ski,
                         std::optional<Direction> existing, Direction new_direction,
                         DoubleConnectionRule rule, bool passive_wait_over) {
    if (!existing) return Decision::keep_new;
    if (local_ski == remote_ski) return Decision::keep_existing;
    const bool local_is_larger = local_ski > remote_ski;

    if (rule == DoubleConnectionRule::first_come) {
        // The peer keeps what it took first: in a crossing its own dial (our incoming link), else the link it
        // already has.
        const bool new_is_peers_own =
            new_direction == Direction::incoming && *existing == Direction::outgoing;
        return new_is_peers_own ? Decision::keep_new : Decision::keep_existing;
    }

    if (rule == DoubleConnectionRule::legacy) {
        // Only who initiated the new connection matters: the larger side's dial always wins.
        const bool new_initiated_by_larger = (new_direction == Direction::outgoing) == local_is_larger;
        return new_initiated_by_larger ? Decision::keep_new : Decision::keep_existing;
    }

    // Spec: the most recent connection wins, but only the larger SKI says so at once.
    if (local_is_larger || passive_wait_over) return Decision::keep_new;
    return Decision::defer;
}

bool own_dial_yields(std::string_view local_ski, std::string_view remote_ski, DoubleConnectionRule rule,
                     bool passive_wait_over) {
    // `defer` (smaller SKI, spec rule) keeps the dial: the larger peer decides which link stays.
    return should_keep_new(local_ski, remote_ski, Direction::outgoing, Direction::incoming, rule,
                           passive_wait_over) == Decision::keep_new;
}

} // namespace ship::hub
