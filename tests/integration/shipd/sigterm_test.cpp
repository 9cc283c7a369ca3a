// SIGTERM on a real shipd with real SHIP peers in data exchange and ≥ 128 D-Bus calls in flight, many times
// in a row (issue 13): every run exits within 1 s, every peer gets one polite SHIP close, and every call is
// answered — its result, ShuttingDown, or (once the name is given up) "no such name" — never left without a
// reply ("recipient disconnected without replying") or to the caller's timeout.
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <string>

#include <catch2/catch.hpp>

#include "../daemon/dbus_test_support.hpp"
#include "../hub/hub_harness.hpp"
#include "shipd_process.hpp"

using namespace std::chrono_literals;
using ship::hub::it::PeerPool;
using ship::test::Client;
using ship::test::PrivateBus;
using ship::test::ShipdProcess;
using ship::test::TempDir;

namespace {

long env_number(const char* name, long fallback) {
    const char* value = std::getenv(name);
    return value && *value ? std::atol(value) : fallback;
}

long time_scale() {
    return std::max(1L, env_number("SHIPD_TEST_TIME_SCALE", 1));
}

// The answers a call may get while shipd stops.
bool acceptable(const std::string& error) {
    return error.empty() || error == "org.shipd.Hub1.Error.ShuttingDown" ||
           error == "org.freedesktop.DBus.Error.ServiceUnknown" ||
           error == "org.freedesktop.DBus.Error.NameHasNoOwner";
}

} // namespace

TEST_CASE("SIGTERM with SHIP peers connected and 128 D-Bus calls in flight: exit within 1 s, polite closes, "
          "every call answered",
          "[shipd][stop]") {
    const long scale = time_scale();
    const long runs = env_number("SHIPD_SIGTERM_RUNS", 200 / scale);
    constexpr int calls_in_flight = 128;
    constexpr std::size_t peers = 2;
    std::cout << "[sigterm] " << runs << " runs (SHIPD_SIGTERM_RUNS), " << calls_in_flight
              << " calls in flight, " << peers << " SHIP peers each\n";

    TempDir dir;
    PrivateBus bus(dir.path);
    const auto state = dir.path / "state";
    std::mt19937 rng(20261203);
    PeerPool pool;
    std::vector<std::size_t> identities;
    for (std::size_t i = 0; i < peers; ++i)
        identities.push_back(
            pool.add_identity(ship::hub::it::make_identity("sigterm-peer-" + std::to_string(i))));

    std::map<std::string, int> answers;
    std::chrono::milliseconds slowest{0};
    for (long run = 0; run < runs; ++run) {
        INFO("run " << run);
        ShipdProcess shipd({"--state-dir", state.string(), "--port", "0", "--no-mdns", "--auto-accept",
                            "--bus-address", bus.address(), "--log-level", "warn"},
                           dir.path / "shipd.log");
        REQUIRE(shipd.wait_notify("READY=1", 10s * scale));
        Client client(bus.address());
        const auto port = client.hub().Port();
        const auto ski = client.hub().LocalSKI();

        std::vector<std::size_t> links;
        for (auto id : identities)
            links.push_back(pool.dial(id, port, ski, PeerPool::Mode::ship));
        REQUIRE(pool.wait([&](const auto& all) {
            for (auto l : links)
                if (!all[l].data_exchange) return false;
            return true;
        }));
        // shipd's side of each link reached data exchange too (its SME may finish a moment after the peer's):
        // only there is SHIP's polite close a connectionClose announce.
        REQUIRE(client.wait_for([&] {
            std::size_t connected = 0;
            for (const auto& p : client.hub().ListPeers())
                connected += p.get<4>() ? 1 : 0;
            return connected == peers;
        }));

        // The calls leave at once; SIGTERM follows after a random part of them has left, so some are
        // answered, some queued in shipd's socket, some being handled when the signal comes.
        auto& proxy = client.hub().raw();
        int answered = 0;
        std::vector<std::string> errors;
        const int signal_after = static_cast<int>(rng() % calls_in_flight);
        for (int i = 0; i < calls_in_flight; ++i) {
            auto call = proxy.createMethodCall("org.shipd.Hub1", i % 4 == 0 ? "Trust" : "ListPeers");
            if (i % 4 == 0) call << std::string(40, "0123456789abcdef"[i % 16]);
            proxy.callMethod(
                call,
                [&](sdbus::MethodReply&, const sdbus::Error* error) {
                    ++answered;
                    errors.push_back(error ? error->getName() : std::string());
                },
                std::chrono::duration_cast<std::chrono::microseconds>(20s).count());
            if (i == signal_after) shipd.signal(SIGTERM);
        }
        const auto signalled = std::chrono::steady_clock::now();
        const auto status = shipd.wait_exit(5s * scale);
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - signalled);
        INFO("exit after " << took.count() << " ms\n" << shipd.log());
        REQUIRE(status);
        CHECK(*status == 0);
        CHECK(took < std::chrono::milliseconds(1000 * scale));
        slowest = std::max(slowest, took);

        REQUIRE(client.wait_for([&] { return answered == calls_in_flight; }, 10s));
        for (const auto& e : errors) {
            ++answers[e.empty() ? "ok" : e];
            CHECK(acceptable(e));
        }
        // Every peer in data exchange got SHIP's polite close: one connectionClose announce.
        REQUIRE(pool.wait([&](const auto& all) {
            for (auto l : links)
                if (!all[l].closed) return false;
            return true;
        }));
        for (auto l : links)
            CHECK(pool.outcome(l).close_announces == 1);
    }
    std::cout << "[sigterm] slowest exit " << slowest.count() << " ms; answers:";
    for (const auto& [name, n] : answers)
        std::cout << " " << name << "=" << n;
    std::cout << "\n";
}
