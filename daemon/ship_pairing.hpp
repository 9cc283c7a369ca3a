// The SHIP Pairing Service in shipd: as devA a pairing window (browse `_shippairing._tcp`, admit the first
// addCu request for us that verifies and is new), as devZ one request of our own for another device's QR
// text.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "hub/hub_api.hpp"
#include "hub/pairing_api.hpp"
#include "mdns/pairing_avahi.hpp"
#include "mdns/pairing_store.hpp"
#include "net/timer.hpp"

namespace ship::net {
class Strand;
}

namespace ship::daemon {

struct ShipPairingIdentity {
    std::string ship_id;     // our SHIP ID (the announcement's forId, or our trustId as devZ)
    std::string fingerprint; // SHA-256 of our certificate, upper-case hex (forPar / trustPar)
    std::string ski;
};

// Loop thread only (the strand). `avahi` null = mDNS is off: every call says so.
//
// devA: open_window() browses and evaluates each record in the spec's order (lib/mdns/pairing_service.hpp):
// addressed to us (forId and forPar) → not seen before (replay guard, persisted) → HMAC with our secret (in
// our QR text) → stored. The first accepted one closes the window (§4.3: one device per pairing) and admits
// its certificate (PairingApi::trust_certificate): its first connection is trusted by that fingerprint and
// its SKI learned. A device paired before with another certificate loses its trust (§10.3: one devZ at a
// time). Results addressed to us are reported (last_result) except not-for-us, which is normal traffic.
//
// devZ: request_pairing(qr) trusts the QR's SKI, insists on its FPH256 in TLS, and announces our signed
// request until one connection to that device has lasted 15 minutes (or stop_request()).
class ShipPairing {
public:
    struct Result {
        std::string instance, trust_id, result;
        std::uint64_t time_us = 0;
    };

    ShipPairing(net::Strand& strand, mdns::AvahiSession* avahi, mdns::PairingStore store,
                ship::hub::HubApi& hub, ship::hub::PairingApi& pairing, ShipPairingIdentity identity);
    ~ShipPairing();
    ShipPairing(const ShipPairing&) = delete;
    ShipPairing& operator=(const ShipPairing&) = delete;

    // A device admitted before a restart that has not connected yet is admitted again.
    void start();

    ship::hub::Result open_window(std::chrono::seconds duration);
    ship::hub::Result close_window();
    std::uint64_t window_deadline_us() const noexcept { return window_deadline_us_; }
    ship::hub::Result request_pairing(std::string_view qr);
    ship::hub::Result stop_request();
    const Result& last_result() const noexcept { return last_; }
    const mdns::PairingStore& store() const noexcept { return store_; }

    // The window opened or closed, or a result came in: the D-Bus properties follow.
    void on_changed(std::function<void()> handler) { changed_ = std::move(handler); }
    // From PairingEvents::certificate_trusted: the admitted device proved its certificate.
    void certificate_trusted(const std::string& fingerprint, const std::string& ski);

    // How long a window stays open when no duration is given, and how long a devZ request stays on the air
    // once connected (§4.2, 15 minutes uninterrupted).
    static constexpr std::chrono::seconds default_window{600};
    static constexpr std::chrono::minutes settled_after{15};

private:
    void evaluate(const std::string& instance, const std::vector<std::string>& txt);
    void report(const std::string& instance, const std::string& trust_id, std::string_view result);
    void check_settled();
    void changed() {
        if (changed_) changed_();
    }

    net::Strand& strand_;
    mdns::AvahiSession* avahi_;
    mdns::PairingStore store_;
    ship::hub::HubApi& hub_;
    ship::hub::PairingApi& pairing_;
    ShipPairingIdentity identity_;
    std::function<void()> changed_;

    std::unique_ptr<mdns::PairingBrowser> browser_;
    net::Timer window_timer_;
    net::Timer
        close_soon_; // closing from inside an Avahi callback is not allowed: a zero-delay timer does it
    std::uint64_t window_deadline_us_ = 0;
    Result last_;

    std::unique_ptr<mdns::PairingPublisher> publisher_;
    std::string requested_ski_;
    net::Timer settle_timer_;
};

} // namespace ship::daemon
