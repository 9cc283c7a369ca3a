// A double connection whose outcome the peer may still decide: judge() says whether to wait for the peer's
// own decision or which link to keep, and learn_rule() reads which rule a peer applies from what it closed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hub/double_connection.hpp"

namespace ship::hub {

class TrustStore;

// Three rules are installed (ship-protocol.md §5, stack-quirks.md §1): SHIP 12.2.2 (the larger SKI keeps the
// most recent, the smaller waits 3 s), ship-go v0.6 (keep what the larger SKI dialled, decided at once after
// the upgrade) and OpenEEBUS (first come: it refuses our link right after the upgrade while its own dial
// runs). No fixed rule agrees with all three, so a node that does not know its peer's rule lets the peer
// decide first: every rule but a passive spec peer's acts within a round trip of the second upgrade.

using SteadyTime = std::chrono::steady_clock::time_point;

struct ContestTimes {
    // Larger SKI, peer's rule unknown: how long after the last link of the double connection arrived the
    // peer may still show its own decision (by closing one) before we apply ours. ship-go v0.6 and
    // OpenEEBUS act within a round trip of the upgrade; only a spec peer with the smaller SKI waits for us.
    std::chrono::milliseconds verdict_wait{500};
    // The smaller SKI waits this long for the larger one (SHIP 12.2.2); the bound for every wait.
    std::chrono::milliseconds passive_wait = hub::passive_wait;
};

// One WebSocket to the peer that is part of the double connection: the registered one or one held back.
struct ContestLink {
    std::uint64_t id = 0;
    Direction direction = Direction::incoming;
    SteadyTime arrived{}; // upgraded: admitted (incoming) or opened (outgoing)
    bool in_data_exchange = false;
};

struct Contest {
    std::vector<ContestLink> links;
    bool dial_in_flight = false; // our own dial to the peer, not opened yet
    SteadyTime since{};          // when the double connection was first seen
};

struct Judgement {
    enum class Kind {
        nothing,   // no link left: nothing to decide (a dial still in flight goes on as usual)
        wait,      // the peer's decision may still come: judge again at `until`, or when anything changes
        keep_link, // keep `link`; close every other link, cancel our dial
        keep_dial, // keep our dial in flight; close every link
    };
    Kind kind = Kind::nothing;
    std::uint64_t link = 0;
    SteadyTime until{};
    std::string_view why;     // for the log
    bool peer_waited = false; // larger SKI, rule unknown: the peer let the verdict wait pass (a spec peer)
};

// Decides with the peer's learned rule at once (a spec peer with the larger SKI is still given its 3 s);
// without one, waits as ContestTimes says and then applies `configured`. Either way a link in data exchange
// is kept over links that are not (they are held back unbuilt, so never further along), after the verdict
// wait in which the peer may still end it. The choice among links is should_keep_new / own_dial_yields.
Judgement judge(std::string_view local_ski, std::string_view remote_ski, DoubleConnectionRule configured,
                std::optional<DoubleConnectionRule> learned, const Contest& contest, SteadyTime now,
                const ContestTimes& times = {});

// How the peer ended a link: the close frame it sent, if any.
enum class CloseSignature {
    no_close_frame,         // TCP/TLS close only (OpenEEBUS, ship-go's loser handling)
    normal_double_reason,   // 1000 "double connection" (ship-go v0.6 on its dialling side)
    ship_double_connection, // 4001 "double connection" (spec stacks: ship-go since 2026-08, shipd)
    other,
};
CloseSignature classify_close(bool close_frame, std::uint16_t code, std::string_view reason);

// The peer closed one link of a double connection (not at our request).
struct PeerClose {
    Direction closed = Direction::incoming; // our direction of the link it closed
    bool other_direction_present = false;   // a link or our dial of the other direction was still there
    CloseSignature how = CloseSignature::other;
    bool peer_spoke = false; // it had sent SHIP messages on that link
};

// The rule that explains the close, or nullopt when the close says nothing about one (lib/hub/README.md has
// the table). ship-go v0.6 and OpenEEBUS both keep the larger peer's own dial: where their signatures
// cannot be told apart the answer is either, and both lead to the same decision for that pair of SKIs.
std::optional<DoubleConnectionRule> learn_rule(std::string_view local_ski, std::string_view remote_ski,
                                               const PeerClose& close);

// Learned rules by SKI, strand-confined: kept with the peer's trust (so a restart remembers them) and, for
// peers not trusted (yet), in a bounded map in memory.
class PeerRules {
public:
    explicit PeerRules(TrustStore& trust)
        : trust_(trust) {}

    std::optional<DoubleConnectionRule> learned(const std::string& ski) const;
    // True if this changed what is known; `persisted` is called when the trust store took the change (the
    // caller waits for its durability).
    bool learn(const std::string& ski, DoubleConnectionRule rule,
               const std::function<void()>& persisted = {});

    static constexpr std::size_t max_untrusted = 256;

private:
    TrustStore& trust_;
    std::map<std::string, DoubleConnectionRule, std::less<>> seen_;
};

} // namespace ship::hub
