// Which polkit action each D-Bus call needs (daemon/authorization.hpp), and how listen-address settings
// become addresses (lib/net/listen_address.hpp): reading is free, everything else has an action, an unknown
// member is closed by default; literals must be this host's, names must be interfaces.
#include <catch2/catch.hpp>

#include "authorization.hpp"
#include "net/listen_address.hpp"

using ship::daemon::required_action;

TEST_CASE("reading needs no action; every action has its polkit id", "[daemon][access]") {
    for (const char* read : {"ListPeers", "ListDiscovered"})
        CHECK_FALSE(required_action("org.shipd.Hub1", read));
    CHECK_FALSE(required_action("org.freedesktop.DBus.Properties", "Get"));
    CHECK_FALSE(required_action("org.freedesktop.DBus.Properties", "GetAll"));
    CHECK_FALSE(required_action("org.freedesktop.DBus.ObjectManager", "GetManagedObjects"));
    CHECK_FALSE(required_action("org.freedesktop.DBus.Introspectable", "Introspect"));
    for (const char* interface : {"org.shipd.Hub1", "org.shipd.Hub1.Peer"}) {
        CHECK(required_action(interface, "Trust") == "org.shipd.trust");
        CHECK(required_action(interface, "Untrust") == "org.shipd.trust");
        CHECK(required_action(interface, "CancelPairing") == "org.shipd.trust");
        CHECK(required_action(interface, "Connect") == "org.shipd.connect");
        CHECK(required_action(interface, "Disconnect") == "org.shipd.connect");
        CHECK(required_action(interface, "SendData") == "org.shipd.send-data");
        // A method added later without an action of its own is closed, not open.
        CHECK(required_action(interface, "SomethingNew") == "org.shipd.configure");
    }
    CHECK(required_action("org.shipd.Hub1", "RegisterAgent") == "org.shipd.pairing");
    const char* set = "Set";
    CHECK(required_action("org.freedesktop.DBus.Properties", set, "org.shipd.Hub1", "AutoAccept") ==
          "org.shipd.configure");
    CHECK(required_action("org.freedesktop.DBus.Properties", set, "org.shipd.Hub1", "WaitForTrust") ==
          "org.shipd.configure");
    CHECK(required_action("org.freedesktop.DBus.Properties", set, "org.shipd.Hub1.Peer", "Blocked") ==
          "org.shipd.trust");
    CHECK_FALSE(required_action("org.freedesktop.DBus.Properties", set, "org.example.Other", "X"));
}

TEST_CASE("listen addresses: loopback literals, interface names, and refusals naming the value",
          "[daemon][access][listen]") {
    using ship::net::ListenAddress;
    using ship::net::resolve_listen_addresses;
    CHECK(resolve_listen_addresses({}) == std::vector<ListenAddress>{ListenAddress{}});
    CHECK(resolve_listen_addresses({""}) == std::vector<ListenAddress>{ListenAddress{}});
    CHECK(resolve_listen_addresses({"127.0.0.1", "::1", "127.0.0.1"}) ==
          std::vector<ListenAddress>{{"127.0.0.1", ""}, {"::1", ""}});
    CHECK(resolve_listen_addresses({"0.0.0.0", "::"}) ==
          std::vector<ListenAddress>{{"0.0.0.0", ""}, {"::", ""}});
    // "lo" stands for its addresses: 127.0.0.1 at least.
    const auto lo = resolve_listen_addresses({"lo"});
    CHECK(std::find(lo.begin(), lo.end(), ListenAddress{"127.0.0.1", ""}) != lo.end());
    const auto refusal = [](std::vector<std::string> specs) {
        try {
            resolve_listen_addresses(specs);
        } catch (const ship::net::ListenAddressError& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    CHECK_THAT(refusal({"198.51.100.77"}),
               Catch::Contains("198.51.100.77") && Catch::Contains("not an address"));
    CHECK_THAT(refusal({"2001:db8::77"}), Catch::Contains("2001:db8::77"));
    CHECK_THAT(refusal({"nosuchif0"}), Catch::Contains("nosuchif0"));
    CHECK_THAT(refusal({"a b"}), Catch::Contains("'a b'"));
    CHECK_THAT(refusal({"", "127.0.0.1"}), Catch::Contains("cannot be combined"));
    CHECK(ship::net::display_listen_address("", 4711) == "[::]:4711");
    CHECK(ship::net::display_listen_address("127.0.0.1", 4711) == "127.0.0.1:4711");
    CHECK(ship::net::display_listen_address("fe80::1%eth0", 4711) == "[fe80::1%eth0]:4711");
}
