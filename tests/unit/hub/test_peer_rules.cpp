// hub/peer_rules: when a double connection waits for the peer, what is kept once it does not, which rule a
// peer's close shows, and that a learned rule is kept with the peer's trust. Virtual clock: every `now` is
// a point the test names.
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

#include "../util/owner_queue.hpp"
#include "fake_connection.hpp"
#include "hub/peer_rules.hpp"
#include "hub/trust_store.hpp"

using namespace ship::hub;
using namespace std::chrono_literals;
using ship::hub::test::large_ski;
using ship::hub::test::small_ski;
using Kind = Judgement::Kind;

namespace {

constexpr auto out = Direction::outgoing;
constexpr auto in = Direction::incoming;
constexpr auto spec = DoubleConnectionRule::spec;
constexpr auto legacy = DoubleConnectionRule::legacy;
constexpr auto first_come = DoubleConnectionRule::first_come;

const SteadyTime t0 = SteadyTime{} + 1000s; // the virtual clock's "double connection seen"
const ContestTimes times{500ms, 3000ms};

// Link 1 arrived at t0 (the first one), link 2 at t0 + `second_after`.
Contest two(Direction first, Direction second, std::chrono::milliseconds second_after = 1ms) {
    Contest c;
    c.since = t0;
    c.links = {{1, first, t0, false}, {2, second, t0 + second_after, false}};
    return c;
}

Judgement judge_at(bool local_larger, DoubleConnectionRule configured,
                   std::optional<DoubleConnectionRule> learned, const Contest& c, SteadyTime now) {
    return judge(local_larger ? large_ski : small_ski, local_larger ? small_ski : large_ski, configured,
                 learned, c, now, times);
}

struct TempDir {
    TempDir() {
        std::random_device rd;
        path = std::filesystem::temp_directory_path() /
               ("shipd-peer-rules-" + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::filesystem::path path;
};

} // namespace

TEST_CASE("peer rules: one link and no dial is kept at once; no link is nothing to decide", "[peer-rules]") {
    Contest one;
    one.since = t0;
    one.links = {{7, in, t0, false}};
    for (bool larger : {true, false}) {
        const auto j = judge_at(larger, spec, std::nullopt, one, t0);
        CHECK(j.kind == Kind::keep_link);
        CHECK(j.link == 7);
    }
    Contest none;
    none.since = t0;
    none.dial_in_flight = true;
    CHECK(judge_at(true, spec, std::nullopt, none, t0).kind == Kind::nothing);
}

// Fails if a node that does not know its peer's rule decided before the peer could: ship-go v0.6 and
// OpenEEBUS close a link within a round trip of the second upgrade, and a decision of ours that disagrees
// loses both links.
TEST_CASE("peer rules: rule unknown, the larger SKI gives the peer the verdict wait after the last link",
          "[peer-rules]") {
    const auto c = two(out, in, 20ms);
    const auto waiting = judge_at(true, spec, std::nullopt, c, t0 + 20ms + 499ms);
    CHECK(waiting.kind == Kind::wait);
    CHECK(waiting.until == t0 + 20ms + 500ms);
    const auto decided = judge_at(true, spec, std::nullopt, c, t0 + 20ms + 500ms);
    REQUIRE(decided.kind == Kind::keep_link);
    CHECK(decided.link == 2); // spec: the most recent
    CHECK(decided.peer_waited);
    const auto by_legacy = judge_at(true, legacy, std::nullopt, c, t0 + 520ms);
    REQUIRE(by_legacy.kind == Kind::keep_link);
    CHECK(by_legacy.link == 1); // legacy: what we (the larger) dialled
}

TEST_CASE("peer rules: rule unknown, the smaller SKI waits the passive wait (SHIP 12.2.2), then most recent",
          "[peer-rules]") {
    const auto c = two(in, out);
    const auto waiting = judge_at(false, spec, std::nullopt, c, t0 + 2999ms);
    CHECK(waiting.kind == Kind::wait);
    CHECK(waiting.until == t0 + 3000ms);
    const auto decided = judge_at(false, spec, std::nullopt, c, t0 + 3000ms);
    REQUIRE(decided.kind == Kind::keep_link);
    CHECK(decided.link == 2);
    CHECK_FALSE(decided.peer_waited);
}

// CONN_001: the tool takes our dial's TCP and never finishes it, and dials us. The larger SKI waits while
// its dial may still open (the peer decides once both are up), but no longer than the passive wait; then
// the incoming one is kept and the dial cancelled.
TEST_CASE("peer rules: a dial that never opens is waited for at most the passive wait", "[peer-rules]") {
    Contest c;
    c.since = t0;
    c.links = {{1, in, t0, false}};
    c.dial_in_flight = true;
    CHECK(judge_at(true, spec, std::nullopt, c, t0 + 600ms).kind == Kind::wait);
    const auto j = judge_at(true, spec, std::nullopt, c, t0 + 3000ms);
    REQUIRE(j.kind == Kind::keep_link);
    CHECK(j.link == 1);
    CHECK_FALSE(j.peer_waited); // our dial never resolved: the peer could not decide
    // Legacy keeps the larger's (our) dial instead.
    CHECK(judge_at(true, legacy, std::nullopt, c, t0 + 3000ms).kind == Kind::keep_dial);
}

TEST_CASE("peer rules: a learned rule decides at once, except spec with the peer the larger",
          "[peer-rules]") {
    struct Row {
        bool local_larger;
        DoubleConnectionRule learned;
        Direction first, second;
        Kind kind;
        std::uint64_t keep;
    };
    const std::vector<Row> rows = {
        // ship-go v0.6: the link the larger SKI dialled
        {true, legacy, out, in, Kind::keep_link, 1},
        {true, legacy, in, out, Kind::keep_link, 2},
        {false, legacy, out, in, Kind::keep_link, 2},
        {false, legacy, in, out, Kind::keep_link, 1},
        // OpenEEBUS: its own dial, our incoming link, whoever is larger
        {true, first_come, out, in, Kind::keep_link, 2},
        {true, first_come, in, out, Kind::keep_link, 1},
        {false, first_come, out, in, Kind::keep_link, 2},
        {false, first_come, in, out, Kind::keep_link, 1},
        // spec, peer passive (we are larger): the most recent, at once
        {true, spec, out, in, Kind::keep_link, 2},
        {true, spec, in, out, Kind::keep_link, 2},
        // spec, peer larger: it decides; we wait
        {false, spec, out, in, Kind::wait, 0},
    };
    for (const auto& r : rows) {
        INFO("local " << (r.local_larger ? "larger" : "smaller") << ", learned " << to_string(r.learned)
                      << ", " << to_string(r.first) << " then " << to_string(r.second));
        const auto j = judge_at(r.local_larger, spec, r.learned, two(r.first, r.second), t0 + 1ms);
        CHECK(j.kind == r.kind);
        if (r.kind == Kind::keep_link) CHECK(j.link == r.keep);
    }
    // With our dial still in flight: first-come drops it for the peer's link, legacy keeps the larger's.
    Contest c;
    c.since = t0;
    c.links = {{1, in, t0, false}};
    c.dial_in_flight = true;
    CHECK(judge_at(true, spec, first_come, c, t0).kind == Kind::keep_link);
    CHECK(judge_at(true, spec, legacy, c, t0).kind == Kind::keep_dial);
    CHECK(judge_at(false, spec, legacy, c, t0).kind == Kind::keep_link);
}

// Fails if a link in data exchange could be replaced by one held back (never further along), whatever the
// rule says; the peer still gets the verdict wait to end it itself.
TEST_CASE("peer rules: a link in data exchange is kept over a newer one, after the verdict wait",
          "[peer-rules]") {
    auto c = two(in, out, 10ms);
    c.links[0].in_data_exchange = true;
    for (auto learned :
         std::vector<std::optional<DoubleConnectionRule>>{std::nullopt, spec, legacy, first_come})
        for (bool larger : {true, false}) {
            INFO("learned " << (learned ? to_string(*learned) : "none") << ", local "
                            << (larger ? "larger" : "smaller"));
            CHECK(judge_at(larger, spec, learned, c, t0 + 10ms + 499ms).kind == Kind::wait);
            const auto j = judge_at(larger, spec, learned, c, t0 + 10ms + 500ms);
            REQUIRE(j.kind == Kind::keep_link);
            CHECK(j.link == 1);
        }
}

TEST_CASE("peer rules: a close frame tells the rule", "[peer-rules]") {
    CHECK(classify_close(false, 1006, "peer closed without close frame") == CloseSignature::no_close_frame);
    CHECK(classify_close(true, 1000, "double connection") == CloseSignature::normal_double_reason);
    CHECK(classify_close(true, 4001, "double connection") == CloseSignature::ship_double_connection);
    CHECK(classify_close(true, 4001, "shutting down") == CloseSignature::other);
    CHECK(classify_close(true, 1000, "bye") == CloseSignature::other);
}

// The signatures of stack-quirks.md §1, from our side: the link the peer closed, our SKI order, its frame.
TEST_CASE("peer rules: what a peer's close of one link of a double connection shows", "[peer-rules]") {
    using Sig = CloseSignature;
    struct Row {
        bool local_larger;
        Direction closed;
        Sig how;
        bool spoke;
        std::optional<DoubleConnectionRule> rule;
    };
    const std::vector<Row> rows = {
        // OpenEEBUS drops our link right after the upgrade while its dial runs
        {true, out, Sig::no_close_frame, false, first_come},
        {false, out, Sig::no_close_frame, false, first_come},
        // ship-go v0.6, peer larger, our link registered first there (it had answered our CMI)
        {false, out, Sig::no_close_frame, true, legacy},
        // ship-go v0.6 keeps our (the larger's) dial: its own goes, silently or with 1000
        {true, in, Sig::no_close_frame, false, legacy},
        {true, in, Sig::normal_double_reason, false, legacy},
        // ship-go v0.6 as the larger refuses our new link with 1000 on its server side
        {false, out, Sig::normal_double_reason, false, legacy},
        // a spec stack says 4001 "double connection"
        {true, out, Sig::ship_double_connection, false, spec},
        {false, in, Sig::ship_double_connection, true, spec},
        // nothing ship-go v0.6 would do, and not the others either
        {true, out, Sig::normal_double_reason, false, std::nullopt},
        {false, in, Sig::no_close_frame, false, std::nullopt},
        {true, in, Sig::other, false, std::nullopt},
    };
    for (const auto& r : rows) {
        INFO("local " << (r.local_larger ? "larger" : "smaller") << ", closed " << to_string(r.closed)
                      << ", signature " << static_cast<int>(r.how));
        const PeerClose close{r.closed, true, r.how, r.spoke};
        const auto local = r.local_larger ? large_ski : small_ski;
        const auto remote = r.local_larger ? small_ski : large_ski;
        CHECK(learn_rule(local, remote, close) == r.rule);
    }
    // A close with no link of the other direction around is no double connection decision.
    CHECK_FALSE(learn_rule(large_ski, small_ski, PeerClose{out, false, Sig::no_close_frame, false}));
}

TEST_CASE("peer rules: a learned rule is kept with the peer's trust and survives a restart", "[peer-rules]") {
    TempDir dir;
    ship::test::OwnerQueue owner;
    {
        auto store = TrustStore::load(dir.path, owner.post());
        store.trust(large_ski, "peer-id");
        PeerRules rules(store);
        CHECK_FALSE(rules.learned(large_ski));
        bool persisted = false;
        CHECK(rules.learn(large_ski, first_come, [&] { persisted = true; }));
        CHECK(persisted);
        CHECK_FALSE(rules.learn(large_ski, first_come)); // nothing new
        CHECK(rules.learned(large_ski) == first_come);
        // Not trusted: remembered in memory only.
        CHECK(rules.learn(small_ski, legacy));
        CHECK(rules.learned(small_ski) == legacy);
        CHECK_FALSE(store.find(small_ski));
        bool durable = false;
        store.when_durable([&](const std::optional<std::string>& e) { durable = !e; });
        REQUIRE(owner.run_until([&] { return durable; }));
    }
    auto reloaded = TrustStore::load(dir.path, owner.post());
    REQUIRE(reloaded.find(large_ski));
    CHECK(reloaded.find(large_ski)->double_connection == first_come);
    CHECK(reloaded.find(large_ski)->ship_id == "peer-id");
    PeerRules rules(reloaded);
    CHECK(rules.learned(large_ski) == first_come);
}

TEST_CASE("peer rules: memory for untrusted peers is bounded", "[peer-rules]") {
    TempDir dir;
    ship::test::OwnerQueue owner;
    auto store = TrustStore::load(dir.path, owner.post());
    PeerRules rules(store);
    for (std::size_t i = 0; i < PeerRules::max_untrusted + 50; ++i) {
        char ski[41];
        std::snprintf(ski, sizeof ski, "%040zx", i);
        rules.learn(ski, spec);
    }
    std::size_t known = 0;
    for (std::size_t i = 0; i < PeerRules::max_untrusted + 50; ++i) {
        char ski[41];
        std::snprintf(ski, sizeof ski, "%040zx", i);
        known += rules.learned(ski).has_value() ? 1 : 0;
    }
    CHECK(known == PeerRules::max_untrusted);
}
