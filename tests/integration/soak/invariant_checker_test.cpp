// The soak's invariant checker must catch what it is there to catch: a broken alternation, a signal for a
// stranger, and it must not flag a restart that ends every connection at once.
#include <catch2/catch.hpp>

#include "invariant_checker.hpp"

namespace ship::soak {
namespace {

const std::string a(40, 'a'), b(40, 'b');

test::Signal connected(const std::string& ski) {
    return {"/org/shipd/Hub1", "PeerConnected", {ski}};
}
test::Signal disconnected(const std::string& ski) {
    return {"/org/shipd/Hub1", "PeerDisconnected", {ski, "test"}};
}
test::Signal owner(const std::string& old_owner, const std::string& new_owner) {
    return {"/org/freedesktop/DBus", "NameOwnerChanged", {"org.shipd.Hub1", old_owner, new_owner}};
}

} // namespace

TEST_CASE("invariant checker: alternating connects and disconnects per SKI pass", "[soak]") {
    InvariantChecker checker({a, b});
    checker.consume({connected(a), connected(b), disconnected(a), connected(a)});
    CHECK(checker.violations().empty());
    CHECK(checker.connected(a));
    CHECK(checker.connected(b));
    CHECK(checker.connects_total() == 3);
    CHECK(checker.signals_total() == 4);
}

TEST_CASE("invariant checker: a second PeerConnected without PeerDisconnected is a violation", "[soak]") {
    InvariantChecker checker({a});
    checker.consume({connected(a), connected(a)});
    REQUIRE(checker.violations().size() == 1);
    CHECK_THAT(checker.violations()[0], Catch::Contains("twice") && Catch::Contains(a));
}

TEST_CASE("invariant checker: PeerDisconnected first is a violation", "[soak]") {
    InvariantChecker checker({a});
    checker.consume({disconnected(a)});
    CHECK(checker.violations().size() == 1);
}

TEST_CASE("invariant checker: shipd leaving the bus disconnects everyone; the next start begins afresh",
          "[soak]") {
    InvariantChecker checker({a, b});
    checker.consume({owner("", ":1.1"), connected(a), connected(b), owner(":1.1", "")});
    CHECK(checker.connected_skis().empty());
    CHECK(checker.epoch() == 1);
    checker.consume({owner("", ":1.7"), connected(a), disconnected(a)});
    CHECK(checker.violations().empty());
    // A stale PeerDisconnected from the stopped daemon after its name went away breaks the contract.
    checker.consume({disconnected(b)});
    CHECK(checker.violations().size() == 1);
}

TEST_CASE("invariant checker: a connection signal for an SKI that is not a soak peer is a violation",
          "[soak]") {
    InvariantChecker checker({a});
    checker.consume({connected(b)});
    REQUIRE(checker.violations().size() == 1);
    CHECK_THAT(checker.violations()[0], Catch::Contains("no soak peer"));
}

} // namespace ship::soak
