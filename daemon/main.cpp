// shipd: loads its settings and identity, builds the hub on the strand, serves it on D-Bus and mDNS, and
// runs until SIGTERM/SIGINT. Exit 0 on a clean stop, 1 on a runtime failure, 2 on a usage or config error.
#include <signal.h>

#include <cstdio>
#include <exception>
#include <optional>
#include <stop_token>

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include "dbus_service.hpp"
#include "fd_limit.hpp"
#include "hub/hub.hpp"
#include "hub/lws/lws_network.hpp"
#include "hub/lws/strand_loop.hpp"
#include "logging.hpp"
#include "mdns/browser.hpp"
#include "mdns/pairing_service.hpp"
#include "mdns/pairing_store.hpp"
#include "mdns/publisher.hpp"
#include "mdns/txt.hpp"
#include "net/event_loop.hpp"
#include "net/listen_address.hpp"
#include "net/strand.hpp"
#include "net/timer.hpp"
#include "options.hpp"
#include "ship_pairing.hpp"
#include "shipd_version.hpp"
#include "tls/fingerprint.hpp"
#include "tls/identity.hpp"
#include "util/atomic_file.hpp"

namespace {

using namespace ship;
using daemon::Options;

// brand-model, or just the brand when the model repeats it (the defaults, "shipd" and "shipd").
std::string brand_and_model(const Options& options) {
    return options.model.empty() || options.model == options.brand ? options.brand
                                                                   : options.brand + "-" + options.model;
}

// The SHIP ID when none is configured: brand-model-serial, or brand-model-<start of the SKI> (unique per
// node, stable across restarts because the SKI is); "shipd-5a1c0de5a1" with the defaults.
std::string effective_ship_id(const Options& options, const std::string& ski) {
    if (!options.ship_id.empty()) return options.ship_id;
    return brand_and_model(options) + "-" + (options.serial.empty() ? ski.substr(0, 10) : options.serial);
}

mdns::LocalService local_service(const Options& options, const std::string& ship_id, const std::string& ski,
                                 std::uint16_t port, bool auto_accept) {
    mdns::LocalService s;
    s.ship_id = ship_id;
    s.ski = ski;
    s.brand = options.brand;
    s.model = options.model;
    s.type = options.type;
    s.serial = options.serial;
    s.categories = options.categories;
    s.auto_register = auto_accept;
    s.port = port;
    return s;
}

hub::DiscoveredService to_discovered(const mdns::ServiceEntry& e) {
    hub::DiscoveredService d;
    d.ski = e.ski;
    d.ship_id = e.ship_id;
    d.brand = e.brand;
    d.model = e.model;
    d.type = e.type;
    d.serial = e.serial;
    d.host = e.addresses.empty() ? e.host_name : e.addresses.front();
    d.host_name = e.host_name;
    d.addresses = e.addresses; // all of them, best first: the hub tries one after another
    d.port = e.port;
    d.path = e.path;
    d.categories = e.categories;
    d.auto_register = e.auto_register;
    return d;
}

tls::Identity load_identity(const Options& options) {
    util::ensure_private_dir(options.state_dir);
    tls::Subject subject;
    subject.common_name = options.ship_id.empty() ? brand_and_model(options) : options.ship_id;
    subject.organization = options.organization;
    subject.country = options.country;
    return tls::load_or_create_identity(options.state_dir, subject);
}

// The installation QR text with the Pairing Service's fields (FPH256, SPSEC) that let a device pair by
// itself.
std::string qr_text(const Options& options, const std::string& ship_id, const tls::Identity& identity,
                    const mdns::PairingStore& store) {
    const auto fingerprint = tls::certificate_fingerprint_pem(identity.certificate_pem);
    if (!fingerprint) throw std::runtime_error("cannot compute the fingerprint of the own certificate");
    return mdns::with_pairing_fields(
        mdns::installation_qr_text(local_service(options, ship_id, identity.ski, 0, false)), *fingerprint,
        store.secret());
}

int run(const Options& options, std::span<char* const> args) {
    // Before the strand exists: libwebsockets sizes its fd tables from the limit when its context is made.
    daemon::raise_fd_limit(options.max_connections);

    for (const auto& note : options.overrides)
        spdlog::info("{}", note);
    // Before anything is bound or created: an address this host does not have is a configuration error.
    std::vector<net::ListenAddress> listen;
    try {
        listen = net::resolve_listen_addresses(options.listen_addresses);
    } catch (const net::ListenAddressError& e) {
        const auto origin = options.origins.find("listen_address");
        spdlog::error("{}{}", origin == options.origins.end() ? std::string() : origin->second + ": ",
                      e.what());
        return daemon::exit_usage;
    }

    const tls::Identity identity = load_identity(options);
    const std::string ship_id = effective_ship_id(options, identity.ski);
    if (auto why = mdns::check(local_service(options, ship_id, identity.ski, 1, options.auto_accept))) {
        spdlog::error("SHIP ID or announcement settings unusable: {}", *why);
        return daemon::exit_usage;
    }
    std::stop_source stop;
    net::Strand strand(stop.get_token());
    // The disk writer thread (trust store) hands its results back through the strand's post queue: the one
    // thing that comes from another thread.
    auto trust = hub::TrustStore::load(options.state_dir,
                                       [&strand](std::function<void()> fn) { strand.post(std::move(fn)); });
    auto pairing_store = mdns::PairingStore::load(
        options.state_dir, [&strand](std::function<void()> fn) { strand.post(std::move(fn)); });

    hub::HubConfig config;
    config.ship_id = ship_id;
    config.certificate_pem = identity.certificate_pem;
    config.private_key_pem = identity.private_key_pem;
    config.local_ski = identity.ski;
    for (const auto& address : listen)
        config.listen_addresses.push_back(address.spec());
    config.port = options.port;
    config.tls12_only = options.tls_max_version == daemon::TlsVersion::tls1_2;
    config.auto_accept = options.auto_accept;
    config.wait_for_trust = options.wait_for_trust;
    config.max_connections = options.max_connections;
    config.max_handshakes = options.max_handshakes;
    config.rule = options.double_connection_rule == daemon::DoubleConnectionRule::legacy
                      ? hub::DoubleConnectionRule::legacy
                      : hub::DoubleConnectionRule::spec;
    config.qr_code = qr_text(options, ship_id, identity, pairing_store);
    config.pairing.timeout = std::chrono::seconds(options.pairing_timeout);
    config.pairing.quiet_period = std::chrono::seconds(options.pairing_quiet_period);
    config.pairing.max_pending = options.max_pending;
    config.pairing.max_pending_per_address = options.max_pending_per_address;

    // One Avahi client on the loop for announcing and browsing (it waits for a missing avahi-daemon).
    mdns::AvahiSession avahi(strand.loop());
    std::unique_ptr<mdns::Publisher> publisher;
    config.on_auto_accept_changed = [&publisher](bool on) {
        if (publisher) publisher->set_register(on);
    };

    hub::StrandLoop loop(strand);
    hub::LwsNetwork network(strand, config);
    hub::Hub hub(loop, network, config, std::move(trust));
    hub.start();

    std::unique_ptr<mdns::Browser> browser;
    if (options.mdns) {
        publisher = std::make_unique<mdns::Publisher>(
            avahi, local_service(options, ship_id, identity.ski, hub.port(), options.auto_accept));
        publisher->start();
        browser = std::make_unique<mdns::Browser>(avahi, identity.ski,
                                                  [&hub](std::vector<mdns::ServiceEntry> peers) {
                                                      std::vector<hub::DiscoveredService> view;
                                                      for (const auto& p : peers)
                                                          view.push_back(to_discovered(p));
                                                      hub.set_discovered(std::move(view));
                                                  });
        browser->start();
        avahi.start();
    }

    daemon::DbusServiceConfig bus;
    bus.bus = options.bus;
    bus.bus_address = options.bus_address;
    bus.version = SHIPD_VERSION;
    bus.on_bus_failure = [&stop](const std::string& why) {
        spdlog::error("D-Bus connection lost: {}", why);
        stop.request_stop();
    };
    bus.pairing = &hub;
    daemon::DbusService dbus(strand.loop(), bus, hub, stop.get_token());
    hub.set_events(&dbus);
    hub.set_pairing_events(&dbus.pairing_events());
    daemon::ShipPairing pairing_service(
        strand, options.mdns ? &avahi : nullptr, std::move(pairing_store), hub, hub,
        daemon::ShipPairingIdentity{
            ship_id, tls::certificate_fingerprint_pem(identity.certificate_pem).value_or(""), identity.ski});
    pairing_service.start();
    dbus.set_pairing_service(&pairing_service);

    auto reload = [&] {
        try {
            const Options next = daemon::load_options(args);
            daemon::check_ship_identity(next);
            if (publisher)
                publisher->set_service(
                    local_service(next, ship_id, identity.ski, hub.port(), hub.auto_accept()));
            dbus.set_qr_code(qr_text(next, ship_id, identity, pairing_service.store()));
            spdlog::info(
                "configuration reloaded: brand, model, type, serial and categories are announced anew; "
                "the other settings take effect at the next start");
        } catch (const std::exception& e) {
            spdlog::error("configuration not reloaded: {}", e.what());
        }
    };
    // Signals are loop events like any other (libev's signal watcher): a stop request or a reload.
    auto request_stop = [&stop](const char* name) {
        if (stop.stop_requested()) return;
        spdlog::info("{} received: stopping", name);
        stop.request_stop();
        // After request_stop() the D-Bus service emits nothing more (see DbusService).
        sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
    };
    net::SignalWatch on_term(strand.loop(), SIGTERM, [&] { request_stop("SIGTERM"); });
    net::SignalWatch on_int(strand.loop(), SIGINT, [&] { request_stop("SIGINT"); });
    net::SignalWatch on_hup(strand.loop(), SIGHUP, [&] {
        if (!stop.stop_requested()) reload();
    });

    // The watchdog is fed from the strand: a stuck event loop stops feeding it.
    net::Timer watchdog(strand);
    std::function<void()> feed;
    std::uint64_t watchdog_usec = 0;
    if (sd_watchdog_enabled(0, &watchdog_usec) > 0) {
        feed = [&] {
            sd_notify(0, "WATCHDOG=1");
            watchdog.start(std::chrono::microseconds(watchdog_usec / 2), feed);
        };
        feed();
    }

    // Ready once org.shipd.Hub1 is ours (the objects are published first).
    try {
        dbus.start();
    } catch (const std::exception& e) {
        spdlog::error("D-Bus service could not start: {}", e.what());
        stop.request_stop();
        strand.run(); // the stop: closes what the hub opened, at once
        return daemon::exit_failure;
    }
    std::string bound;
    for (const auto& a : hub.listen_addresses())
        bound += (bound.empty() ? "" : ", ") + a;
    // "Listening on port N as SKI X" first: tools read it (tests/bench/run-bench.sh, systemctl status).
    const std::string status = "STATUS=Listening on port " + std::to_string(hub.port()) + " as SKI " +
                               identity.ski + " (" + bound + ")";
    sd_notify(0, ("READY=1\n" + status).c_str());
    spdlog::info("shipd {} ready: SHIP ID {}, SKI {}, listening on {}", SHIPD_VERSION, ship_id, identity.ski,
                 bound);

    strand.run();
    // Every peer had its polite close (or the bound passed). Calls that came in while stopping are answered
    // ShuttingDown, the name is given up, and what is queued is written.
    pairing_service.close_window();
    pairing_service.stop_request();
    dbus.close();
    hub.set_pairing_events(nullptr);
    if (browser) browser->stop();
    if (publisher) publisher->stop();
    avahi.stop();
    spdlog::info("stopped");
    return daemon::exit_ok;
}

} // namespace

int main(int argc, char** argv) {
    const std::span<char* const> args(argv, static_cast<std::size_t>(argc));
    Options options;
    try {
        options = daemon::load_options(args);
        if (options.action == daemon::Action::run) daemon::check_ship_identity(options);
    } catch (const daemon::UsageError& e) {
        std::fprintf(stderr, "shipd: %s\n", e.what());
        return daemon::exit_usage;
    }
    switch (options.action) {
    case daemon::Action::version:
        std::printf("shipd %s\n", SHIPD_VERSION);
        return daemon::exit_ok;
    case daemon::Action::help:
        std::fputs(daemon::usage_text(argv[0]).c_str(), stdout);
        return daemon::exit_ok;
    case daemon::Action::print_ski:
    case daemon::Action::print_qr:
        try {
            // One line each, so that scripts can take it as it is: SKI=$(shipd --print-ski).
            const auto identity = load_identity(options);
            const auto ship_id = effective_ship_id(options, identity.ski);
            if (options.action == daemon::Action::print_ski) {
                std::printf("%s\n", identity.ski.c_str());
            } else {
                // The pairing secret is part of the QR text: made here too if this is the first start.
                const auto store = mdns::PairingStore::load(options.state_dir, [](std::function<void()>) {});
                std::printf("%s\n", qr_text(options, ship_id, identity, store).c_str());
            }
            return daemon::exit_ok;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "shipd: %s\n", e.what());
            return daemon::exit_failure;
        }
    case daemon::Action::run:
        break;
    }
    daemon::setup_logging(options.log_level);
    try {
        return run(options, args);
    } catch (const std::exception& e) {
        spdlog::critical("{}", e.what());
        return daemon::exit_failure;
    }
}
