// dbus/examples/energy_manager.cpp against two paired shipd: the app waits for a peer, reads its
// NodeManagement detailed discovery, and prints the reply the responder (the same example in --respond
// mode, on the other daemon) sends back.
#include <catch2/catch.hpp>

#include "shipctl_support.hpp"

using namespace std::chrono_literals;
using ship::test::Child;
using ship::test::ShipctlNode;
using ship::test::TempDir;

TEST_CASE("the example energy manager reads a peer's detailed discovery over D-Bus only",
          "[shipctl][example]") {
    TempDir dir;
    ShipctlNode a(dir.path, "a"), b(dir.path, "b");
    const auto env = ship::test::plain_env();

    Child responder({ship::test::em_example_binary(), "--respond", "--bus-address", b.bus.address()}, env);
    REQUIRE(responder.wait_for("answering discovery reads", 10s));
    Child manager({ship::test::em_example_binary(), "--bus-address", a.bus.address(), "--timeout", "60"},
                  env);
    REQUIRE(manager.wait_for("waiting for a SHIP peer to connect", 10s));

    // Pairing happens after the app started waiting: it must pick up the PeerConnected.
    REQUIRE(a.ctl({"trust", b.ski}).status == 0);
    REQUIRE(b.ctl({"trust", a.ski}).status == 0);
    REQUIRE(a.ctl({"--wait", "30", "connect", b.ski, "127.0.0.1", std::to_string(b.port)}).status == 0);

    INFO(manager.output());
    INFO(responder.output());
    REQUIRE(manager.wait_exit(30s) == 0);
    const auto& out = manager.output();
    CHECK_THAT(out, Catch::Contains("sent a NodeManagement detailed-discovery read to " + b.ski));
    CHECK_THAT(out, Catch::Contains("reply from " + b.ski + ":\n"));
    CHECK_THAT(out, Catch::Contains("  device   d:_i:shipd_example-wallbox (ChargingStation)\n"));
    CHECK_THAT(out, Catch::Contains("  entity   [1] EVSE\n"));
    CHECK_THAT(out, Catch::Contains("  feature  [0].0 NodeManagement (special)\n"));
    CHECK_THAT(out, Catch::Contains(R"("msgCounterReference":1,"cmdClassifier":"reply")"));
    CHECK(responder.wait_for("answered a discovery read from " + a.ski, 10s));

    SECTION("with --ski and the peer already connected it asks at once") {
        const auto r = ship::test::run({ship::test::em_example_binary(), "--bus-address", a.bus.address(),
                                        "--ski", b.ski, "--timeout", "30"},
                                       env);
        INFO(r.err);
        CHECK(r.status == 0);
        CHECK_THAT(r.out, Catch::StartsWith("reply from " + b.ski + ":\n"));
        CHECK_THAT(r.err, !Catch::Contains("waiting for"));
    }
}
