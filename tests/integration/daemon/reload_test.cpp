// A real shipd reloads its config on SIGHUP: an app watching org.shipd.Hub1 sees QRCode change (with a
// PropertiesChanged signal) when brand, model, type or serial change, while the SHIP ID stays what it was.
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>

#include <catch2/catch.hpp>

#include "../shipd/shipd_process.hpp"
#include "dbus_test_support.hpp"

using namespace std::chrono_literals;
using ship::test::Client;
using ship::test::PrivateBus;
using ship::test::ShipdProcess;
using ship::test::TempDir;

namespace {

// Sanitizer builds run the daemon several times slower; tests/run.sh says by how much.
std::chrono::milliseconds scaled(std::chrono::milliseconds bound) {
    const char* scale = std::getenv("SHIPD_TEST_TIME_SCALE");
    return bound * (scale ? std::max(1, std::atoi(scale)) : 1);
}

void write_config(const std::filesystem::path& path, const std::string& text) {
    // Replaced whole, as an editor saving the file would; shipd reads it only on SIGHUP.
    const auto tmp = path.string() + ".new";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, path);
}

// The value of `name` in a recorded PropertiesChanged of the hub object, if that signal carried it.
std::optional<std::string> changed_value(const Client& client, const std::string& name) {
    std::optional<std::string> last;
    for (const auto& s : client.signals()) {
        if (s.name != "PropertiesChanged" || s.path != "/org/shipd/Hub1") continue;
        for (const auto& arg : s.args)
            if (arg.rfind(name + "=", 0) == 0) last = arg.substr(name.size() + 1);
    }
    return last;
}

} // namespace

TEST_CASE("SIGHUP with a new brand and serial changes QRCode and announces it", "[daemon][reload]") {
    TempDir dir;
    PrivateBus bus(dir.path);
    const auto config = dir.path / "shipd.conf";
    write_config(config, R"({"brand": "Acme", "model": "HEMS", "serial": "S1", "categories": [2]})");
    ShipdProcess shipd({"--config", config.string(), "--state-dir", (dir.path / "state").string(), "--port",
                        "0", "--no-mdns", "--bus-address", bus.address()},
                       dir.path / "shipd.log");
    INFO(shipd.log());
    REQUIRE(shipd.wait_notify("READY=1", scaled(10s)));
    Client client(bus.address());
    const std::string ship_id = client.hub().ShipID();
    CHECK(ship_id == "Acme-HEMS-S1");
    const std::string before = client.hub().QRCode();
    CHECK_THAT(before, Catch::Contains(";BRAND:Acme;") && Catch::Contains(";SERIAL:S1;"));

    write_config(config, R"({"brand": "Zeta", "model": "HEMS", "serial": "S2", "categories": [2, 4]})");
    shipd.signal(SIGHUP);
    REQUIRE(client.wait_for(
        [&] {
            const auto qr = changed_value(client, "QRCode");
            return qr && qr->find(";BRAND:Zeta;") != std::string::npos;
        },
        scaled(10s)));
    const auto announced = *changed_value(client, "QRCode");
    CHECK_THAT(announced, Catch::Contains(";SERIAL:S2;") && Catch::Contains(";CAT:2,4;"));
    // The SHIP ID is not changed live (peers know the node by it); the QR text keeps saying the one in use.
    CHECK_THAT(announced, Catch::Contains(";ID:" + ship_id + ";"));
    CHECK(client.hub().QRCode() == announced);
    CHECK(client.hub().ShipID() == ship_id);

    // A reload that changes nothing in the QR text announces nothing: the next change is the only one seen.
    client.clear();
    write_config(config, R"({"brand": "Zeta", "model": "HEMS", "serial": "S2", "categories": [2, 4],
                             "log_level": "debug"})");
    shipd.signal(SIGHUP);
    write_config(config, R"({"brand": "Zeta", "model": "HEMS", "type": "Inverter", "serial": "S2",
                             "categories": [2, 4]})");
    shipd.signal(SIGHUP);
    REQUIRE(client.wait_for([&] { return changed_value(client, "QRCode").has_value(); }, scaled(10s)));
    CHECK_THAT(*changed_value(client, "QRCode"), Catch::Contains(";TYPE:Inverter;"));
    const auto seen = client.signals();
    CHECK(std::count_if(seen.begin(), seen.end(),
                        [](const auto& s) { return s.name == "PropertiesChanged"; }) == 1);

    shipd.signal(SIGTERM);
    CHECK(shipd.wait_exit(scaled(5s)) == 0);
}
