// The pairing book on a virtual clock: the untrusted budget (per address, then overall, oldest first),
// request deadlines, the quiet period and its bound, the once-per-burst log; and blocked SKIs in the trust
// store, persisted across a reload in both of their forms.
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>

#include "../util/owner_queue.hpp"
#include "hub/pairing.hpp"
#include "hub/trust_store.hpp"
#include "manual_timers.hpp"
#include "util/atomic_file.hpp"

using namespace std::chrono_literals;
using namespace ship::hub;
using ship::hub::test::ManualTimers;

namespace {

std::string ski(int n) {
    char buffer[41];
    std::snprintf(buffer, sizeof buffer, "%040x", n);
    return buffer;
}

PairingLimits limits(unsigned total, unsigned per_address) {
    PairingLimits l;
    l.max_pending = total;
    l.max_pending_per_address = per_address;
    l.timeout = 120s;
    l.quiet_period = 600s;
    return l;
}

} // namespace

TEST_CASE("pairing budget: room is made from the same address first, then the oldest overall", "[pairing]") {
    ManualTimers timers;
    std::vector<PairingBook::Entry> expired;
    PairingBook book(timers, limits(4, 2), [&](const auto& e) { expired.push_back(e); });
    CHECK(book.make_room("10.0.0.1").empty());
    book.add(1, ski(1), "10.0.0.1");
    timers.advance(1ms);
    book.add(2, ski(2), "10.0.0.1");
    timers.advance(1ms);
    // A third from 10.0.0.1: its own oldest gives way, not another host's.
    CHECK(book.make_room("10.0.0.1") == std::vector<std::uint64_t>{1});
    book.add(3, ski(3), "10.0.0.2");
    timers.advance(1ms);
    book.add(4, ski(4), "10.0.0.3");
    timers.advance(1ms);
    // Full (4): a newcomer from a fourth host pushes out the oldest of all.
    CHECK(book.make_room("10.0.0.4") == std::vector<std::uint64_t>{1});
    // From 10.0.0.1 again: that host's oldest is also the oldest of all, and one drop makes room for both.
    CHECK(book.make_room("10.0.0.1") == std::vector<std::uint64_t>{1});
    book.remove(1);
    CHECK(book.make_room("10.0.0.4").empty());
    CHECK(book.count_from("10.0.0.1") == 1);
    CHECK(book.size() == 3);
    CHECK(expired.empty());
}

TEST_CASE("pairing budget: a budget of 64 from one address holds 64, the 65th drops exactly the first",
          "[pairing]") {
    ManualTimers timers;
    PairingBook book(timers, limits(64, 64), [](const auto&) {});
    for (std::uint64_t id = 1; id <= 64; ++id) {
        REQUIRE(book.make_room("127.0.0.1").empty());
        book.add(id, ski(static_cast<int>(id)), "127.0.0.1");
        timers.advance(1ms);
    }
    CHECK(book.make_room("127.0.0.1") == std::vector<std::uint64_t>{1});
}

TEST_CASE("pairing deadline: a request expires at its timeout, not a millisecond before; answered ones never",
          "[pairing]") {
    ManualTimers timers;
    std::vector<PairingBook::Entry> expired;
    PairingBook book(timers, limits(16, 4), [&](const auto& e) { expired.push_back(e); });
    book.add(7, ski(7), "10.0.0.1");
    book.add(8, ski(8), "10.0.0.1");
    const auto* r7 = book.ask(7);
    REQUIRE(r7);
    const auto request7 = r7->request;
    CHECK(request7 != 0);
    CHECK(r7->deadline == timers.now() + 120s);
    CHECK(book.ask(7)->request == request7); // asked once: the same request and deadline again
    timers.advance(10s);
    const auto request8 = book.ask(8)->request;
    CHECK(request8 != request7);
    CHECK(book.find_request(request8)->connection == 8);
    book.set_timeout(5s); // for later requests only
    timers.advance(110s - 1ms);
    CHECK(expired.empty());
    timers.advance(1ms);
    REQUIRE(expired.size() == 1);
    CHECK(expired[0].connection == 7);
    CHECK_FALSE(book.find(7)); // it left the book before the callback ran
    CHECK_FALSE(book.find_request(request7));
    book.remove(8); // decided: its timer goes with it
    timers.advance(1h);
    CHECK(expired.size() == 1);
    CHECK(timers.pending() == 0);
}

TEST_CASE("pairing quiet period: a denied SKI is quiet until the period ends; Trust lifts it; bounded",
          "[pairing]") {
    ManualTimers timers;
    auto l = limits(16, 4);
    l.max_quiet = 3;
    PairingBook book(timers, l, [](const auto&) {});
    book.denied(ski(1));
    CHECK(book.is_quiet(ski(1)));
    CHECK_FALSE(book.is_quiet(ski(2)));
    timers.advance(600s - 1ms);
    CHECK(book.is_quiet(ski(1)));
    timers.advance(1ms);
    CHECK_FALSE(book.is_quiet(ski(1)));
    book.denied(ski(2));
    book.forgive(ski(2));
    CHECK_FALSE(book.is_quiet(ski(2)));
    // Many denials (one attacker, many certificates): at most max_quiet remembered, the earliest ending goes.
    for (int i = 10; i < 20; ++i) {
        book.denied(ski(i));
        timers.advance(1s);
    }
    CHECK(book.quiet_count() == 3);
    CHECK(book.is_quiet(ski(19)));
    CHECK_FALSE(book.is_quiet(ski(10)));
    auto none = l;
    none.quiet_period = 0s;
    PairingBook off(timers, none, [](const auto&) {});
    off.denied(ski(1));
    CHECK_FALSE(off.is_quiet(ski(1)));
}

TEST_CASE("burst log: one line per burst of attempts, with the count of the burst before", "[pairing]") {
    ManualTimers timers;
    BurstLog log(60s, 2);
    CHECK(log.attempt("a", timers.now()) == 0u); // first burst: log it
    for (int i = 0; i < 100; ++i) {
        timers.advance(100ms);
        CHECK_FALSE(log.attempt("a", timers.now())); // the same burst: silent
    }
    timers.advance(60s);
    CHECK(log.attempt("a", timers.now()) == 100u); // a new burst, saying how many went unlogged
    CHECK(log.attempt("b", timers.now()) == 0u);
    CHECK(log.attempt("c", timers.now()) == 0u); // beyond max_keys: the longest silent is forgotten
    CHECK_FALSE(log.attempt("c", timers.now()));
}

TEST_CASE("remote address: host and port of IPv4, bracketed IPv6 with zone, garbage", "[pairing]") {
    CHECK(split_host_port("192.0.2.1:4711") == std::pair<std::string, std::uint16_t>{"192.0.2.1", 4711});
    CHECK(split_host_port("[fe80::1%eth0]:50000") ==
          std::pair<std::string, std::uint16_t>{"fe80::1%eth0", 50000});
    CHECK(split_host_port("fe80::1:4711").first.empty());
    CHECK(split_host_port("host:99999").first.empty());
    CHECK(split_host_port("").first.empty());
}

TEST_CASE("trust store: blocked SKIs, trusted or not, survive a reload; unblocking and untrusting are kept "
          "apart",
          "[pairing][trust]") {
    std::random_device rd;
    const auto dir = std::filesystem::temp_directory_path() / ("shipd-blocked-" + std::to_string(rd()));
    std::filesystem::create_directories(dir);
    ship::test::OwnerQueue owner;
    auto settle = [&](TrustStore& store) {
        bool done = false;
        store.when_durable([&](std::optional<std::string> e) {
            CHECK_FALSE(e);
            done = true;
        });
        REQUIRE(owner.run_until([&] { return done; }));
    };
    {
        auto store = TrustStore::load(dir, owner.post());
        store.trust(ski(1), "trusted-and-blocked");
        CHECK(store.set_blocked(ski(1), true));
        CHECK_FALSE(store.set_blocked(ski(1), true)); // no change
        CHECK(store.set_blocked(ski(2), true));       // blocked, never trusted
        store.trust(ski(3));
        settle(store);
        CHECK(store.is_trusted(ski(1)));
        CHECK_FALSE(store.is_trusted(ski(2)));
    }
    {
        auto store = TrustStore::load(dir, owner.post());
        CHECK(store.is_blocked(ski(1)));
        CHECK(store.is_trusted(ski(1)));
        CHECK(store.is_blocked(ski(2)));
        CHECK_FALSE(store.is_trusted(ski(2)));
        CHECK_FALSE(store.is_blocked(ski(3)));
        CHECK(store.size() == 2);
        store.untrust(ski(1)); // the block stays
        store.set_blocked(ski(2), false);
        settle(store);
    }
    auto store = TrustStore::load(dir, owner.post());
    CHECK(store.is_blocked(ski(1)));
    CHECK_FALSE(store.is_trusted(ski(1)));
    CHECK_FALSE(store.is_blocked(ski(2)));
    CHECK(store.blocked() == std::vector<std::string>{ski(1)});
    std::filesystem::remove_all(dir);
}

TEST_CASE("trust store: a snapshot keeps blocked SKIs (compaction), and one without any is unchanged",
          "[pairing][trust]") {
    std::random_device rd;
    const auto dir = std::filesystem::temp_directory_path() / ("shipd-blocked-snap-" + std::to_string(rd()));
    std::filesystem::create_directories(dir);
    ship::test::OwnerQueue owner;
    {
        auto store = TrustStore::load(dir, owner.post());
        store.set_blocked(ski(9), true);
        store.trust(ski(8));
        store.set_blocked(ski(8), true);
        // Enough changes for the journal to be compacted into a snapshot.
        for (int round = 0; round < 300; ++round) {
            store.trust(ski(100), "round-" + std::to_string(round));
            bool done = false;
            store.when_durable([&](std::optional<std::string>) { done = true; });
            REQUIRE(owner.run_until([&] { return done; }));
        }
        CHECK(store.writes().snapshots >= 1);
    }
    const auto snapshot = ship::util::read_file(dir / "trust.json").value_or("");
    CHECK(snapshot.find("\"blocked\"") != std::string::npos);
    auto store = TrustStore::load(dir, owner.post());
    CHECK(store.is_blocked(ski(9)));
    CHECK(store.is_blocked(ski(8)));
    CHECK(store.is_trusted(ski(8)));
    CHECK_FALSE(store.is_trusted(ski(9)));
    std::filesystem::remove_all(dir);
}
