// A SHIP peer in its own process, so the soak can SIGKILL it: its transport then vanishes without any SHIP
// or WebSocket close, as when a wallbox loses power. One Hub on one strand, trusting shipd and dialling it.
//
// soak_peer STATE_DIR LISTEN_PORT SHIP_ID SHIPD_SKI SHIPD_PORT SEED
// STATE_DIR holds cert.pem/key.pem (made by the test, so the SKI survives a restart) and the trust store.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stop_token>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "hub/hub.hpp"
#include "hub/lws/lws_network.hpp"
#include "hub/lws/strand_loop.hpp"
#include "net/strand.hpp"
#include "tls/identity.hpp"

int main(int argc, char** argv) {
    if (argc != 7) {
        std::fprintf(stderr, "usage: %s STATE_DIR LISTEN_PORT SHIP_ID SHIPD_SKI SHIPD_PORT SEED\n", argv[0]);
        return 2;
    }
    try {
        const std::filesystem::path state = argv[1];
        const auto port = static_cast<std::uint16_t>(std::stoul(argv[2]));
        const std::string ship_id = argv[3], shipd_ski = argv[4];
        const auto shipd_port = static_cast<std::uint16_t>(std::stoul(argv[5]));
        // stdout carries only the READY line the test waits for.
        spdlog::set_default_logger(spdlog::stderr_logger_mt("soak_peer"));
        spdlog::set_level(spdlog::level::info);

        const auto identity = ship::tls::load_or_create_identity(state, {ship_id, "shipd soak", {}, {}});
        std::stop_source stop; // never requested: this process ends by SIGKILL only
        ship::net::Strand strand(stop.get_token());
        ship::hub::HubConfig config;
        config.ship_id = ship_id;
        config.certificate_pem = identity.certificate_pem;
        config.private_key_pem = identity.private_key_pem;
        config.local_ski = identity.ski;
        config.listen_address = "127.0.0.1";
        config.port = port;
        config.random_seed = std::stoull(argv[6]);
        ship::hub::StrandLoop loop(strand);
        ship::hub::LwsNetwork network(strand, config);
        ship::hub::Hub hub(loop, network, config,
                           ship::hub::TrustStore::load(
                               state, [&strand](std::function<void()> fn) { strand.post(std::move(fn)); }));
        hub.start();
        // Before run() this thread is the strand. Trust and the address persist in the trust store, so after
        // a restart the hub dials shipd by itself; calling again is harmless.
        if (auto e = hub.trust(shipd_ski)) throw std::runtime_error(e->message);
        if (auto e = hub.connect(shipd_ski, "127.0.0.1", shipd_port)) throw std::runtime_error(e->message);
        std::printf("READY %u\n", static_cast<unsigned>(hub.port()));
        std::fflush(stdout);
        strand.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "soak_peer: %s\n", e.what());
        return 1;
    }
    return 0;
}
