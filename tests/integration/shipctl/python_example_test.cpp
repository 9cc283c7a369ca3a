// dbus/examples/energy_manager.py (python3-dbus-next) against real shipd: it approves a device that asks to
// pair, waits for the connection, sends a SPINE detailed-discovery read and prints the reply the C++ example
// (--respond, on the other daemon) sends back; then, given an address, it connects by itself.
#include <catch2/catch.hpp>

#include <cstdlib>

#include "shipctl_support.hpp"

using namespace std::chrono_literals;
using ship::test::Child;
using ship::test::ShipctlNode;
using ship::test::TempDir;

TEST_CASE("the Python example pairs, receives, sends and connects over D-Bus only", "[shipctl][example]") {
    const char* script = std::getenv("SHIPD_EM_EXAMPLE_PY");
    REQUIRE(script != nullptr);
    if (ship::test::run({"/usr/bin/python3", "-c", "import dbus_next"}).status != 0) {
        WARN("python3-dbus-next is not installed (packaging/bootstrap.sh installs it); skipped");
        return;
    }
    // Debian's interpreter, where python3-dbus-next is (a pyenv or venv python3 on PATH has other modules).
    TempDir dir;
    ShipctlNode a(dir.path, "a"), b(dir.path, "b");
    const auto env = ship::test::plain_env();

    Child responder({ship::test::em_example_binary(), "--respond", "--bus-address", b.bus.address()}, env);
    REQUIRE(responder.wait_for("answering discovery reads", 10s));

    // Pairing: b trusts a and dials it; a has never heard of b, so b waits in hello pending on a until the
    // app decides (it trusts the first device that asks).
    Child app({"/usr/bin/python3", script, "--bus-address", a.bus.address(), "--accept", "--timeout", "60"},
              env);
    REQUIRE(app.wait_for("waiting for a SHIP peer to connect", 20s));
    REQUIRE(b.ctl({"trust", a.ski}).status == 0);
    Child dial(b.ctl_argv({"connect", a.ski, "127.0.0.1", std::to_string(a.port)}), env);

    INFO(app.output());
    INFO(responder.output());
    REQUIRE(app.wait_exit(40s) == 0);
    CHECK_THAT(app.output(), Catch::Contains("pairing request from " + b.ski + ": trusting it"));
    CHECK_THAT(app.output(), Catch::Contains("sent a NodeManagement detailed-discovery read to " + b.ski));
    CHECK_THAT(app.output(), Catch::Contains("reply from " + b.ski + ":\n"));
    CHECK_THAT(app.output(), Catch::Contains("  entity   [1] EVSE\n"));
    CHECK_THAT(app.output(), Catch::Contains(R"("msgCounterReference":1,"cmdClassifier":"reply")"));
    CHECK(dial.wait_exit(30s) == 0);

    // Connect by address: the app trusts and dials b itself (already connected here: Connect answers at
    // once) and asks again.
    const auto r = ship::test::run({"/usr/bin/python3", script, "--bus-address", a.bus.address(), "--connect",
                                    b.ski, "127.0.0.1", std::to_string(b.port), "--timeout", "30"},
                                   env);
    INFO(r.err);
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains("reply from " + b.ski + ":\n"));

    // shipd's refusals come out as the app's own: a Connect to a port where nothing listens.
    const auto refused =
        ship::test::run({"/usr/bin/python3", script, "--bus-address", a.bus.address(), "--connect",
                         std::string(40, 'e'), "127.0.0.1", "1", "--timeout", "30"},
                        env);
    CHECK(refused.status == 1);
    CHECK_THAT(refused.err, Catch::Contains("org.shipd.Hub1.Error.ConnectFailed"));
}
