// Where a discovered peer can be dialled, and how Avahi's per-interface, per-protocol reports become one
// entry per SKI.
#include <catch2/catch.hpp>

#include "mdns/address.hpp"
#include "mdns/merge.hpp"

using namespace ship::mdns;

namespace {

const std::string ski_a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const std::string ski_b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

Sighting sighting(const std::string& ski, const std::string& address, std::uint64_t sequence,
                  bool auto_register = false) {
    Sighting s;
    s.entry.ski = ski;
    s.entry.ship_id = "id-" + ski.substr(0, 1);
    s.entry.path = "/ship/";
    s.entry.auto_register = auto_register;
    s.entry.port = 4711;
    s.entry.addresses = {address};
    s.sequence = sequence;
    return s;
}

} // namespace

TEST_CASE("Address: an IPv6 link-local address gets its interface as zone; others stay as they are",
          "[mdns][address]") {
    CHECK(with_zone("fe80::6cec:aeff:fea8:a313", "veth-a") == "fe80::6cec:aeff:fea8:a313%veth-a");
    CHECK(with_zone("febf::1", "eth0") == "febf::1%eth0"); // still fe80::/10
    CHECK(with_zone("fec0::1", "eth0") == "fec0::1");
    CHECK(with_zone("2001:db8::1", "eth0") == "2001:db8::1");
    CHECK(with_zone("169.254.77.1", "eth0") == "169.254.77.1");
    CHECK(with_zone("fe80::1%eth1", "eth0") == "fe80::1%eth1");
    CHECK(with_zone("fe80::1", "") == "fe80::1");
}

TEST_CASE("Address: IPv4 first, then global IPv6, then link-local IPv6; duplicates dropped",
          "[mdns][address]") {
    std::vector<std::string> addresses = {"fe80::1%eth0", "2001:db8::1", "10.0.0.2", "10.0.0.1", "10.0.0.1"};
    order_addresses(addresses);
    CHECK(addresses == std::vector<std::string>{"10.0.0.1", "10.0.0.2", "2001:db8::1", "fe80::1%eth0"});
}

TEST_CASE("Merge: one entry per SKI with the addresses of every sighting, IPv4 first", "[mdns][merge]") {
    const auto peers = merge_sightings({sighting(ski_a, "fe80::1%veth-b", 1),
                                        sighting(ski_a, "169.254.77.1", 2), sighting(ski_b, "10.0.0.9", 3)},
                                       "");
    REQUIRE(peers.size() == 2);
    CHECK(peers[0].ski == ski_a);
    CHECK(peers[0].addresses == std::vector<std::string>{"169.254.77.1", "fe80::1%veth-b"});
    CHECK(peers[1].ski == ski_b);
    CHECK(peers[1].addresses == std::vector<std::string>{"10.0.0.9"});
}

TEST_CASE("Merge: our own SKI is never reported", "[mdns][merge]") {
    const auto peers =
        merge_sightings({sighting(ski_a, "10.0.0.1", 1), sighting(ski_b, "10.0.0.2", 2)}, ski_a);
    REQUIRE(peers.size() == 1);
    CHECK(peers[0].ski == ski_b);
}

TEST_CASE("Merge: when sightings of one SKI disagree, the latest resolved one's TXT fields win",
          "[mdns][merge]") {
    // The IPv4 sighting already carries the new `register`, the IPv6 one has not been re-resolved yet.
    auto peers =
        merge_sightings({sighting(ski_a, "fe80::1%e", 5, false), sighting(ski_a, "10.0.0.1", 6, true)}, "");
    REQUIRE(peers.size() == 1);
    CHECK(peers[0].auto_register);
    peers =
        merge_sightings({sighting(ski_a, "fe80::1%e", 7, false), sighting(ski_a, "10.0.0.1", 6, true)}, "");
    CHECK_FALSE(peers[0].auto_register);
    CHECK(peers[0].addresses.size() == 2);
}

TEST_CASE("Merge: nothing seen, nothing reported", "[mdns][merge]") {
    CHECK(merge_sightings({}, ski_a).empty());
}
