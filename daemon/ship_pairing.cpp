#include "ship_pairing.hpp"

#include <spdlog/spdlog.h>

#include "mdns/pairing_service.hpp"
#include "ship/ski.hpp"

namespace ship::daemon {

namespace {

using ship::hub::ErrorCode;

ship::hub::Result failure(std::string message) {
    return ship::hub::Error{ErrorCode::invalid_argument, std::move(message)};
}

std::uint64_t now_us() {
    using namespace std::chrono;
    return static_cast<std::uint64_t>(
        duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

const char* const no_mdns = "mDNS is off (--no-mdns or \"mdns\": false): the SHIP Pairing Service needs it";

// The forId of a record that could not be read: whether it was meant for us decides if its fault is ours to
// report.
std::string raw_value(const std::vector<std::string>& txt, std::string_view key) {
    for (const auto& s : txt)
        if (s.size() > key.size() && s.compare(0, key.size(), key) == 0 && s[key.size()] == '=')
            return s.substr(key.size() + 1);
    return {};
}

} // namespace

ShipPairing::ShipPairing(net::Strand& strand, mdns::AvahiSession* avahi, mdns::PairingStore store,
                         ship::hub::HubApi& hub, ship::hub::PairingApi& pairing, ShipPairingIdentity identity)
    : strand_(strand)
    , avahi_(avahi)
    , store_(std::move(store))
    , hub_(hub)
    , pairing_(pairing)
    , identity_(std::move(identity))
    , window_timer_(strand)
    , close_soon_(strand)
    , settle_timer_(strand) {}

ShipPairing::~ShipPairing() = default;

void ShipPairing::start() {
    const auto& paired = store_.paired();
    if (paired && paired->ski.empty()) {
        spdlog::info("pairing service: device {} ({}) was admitted before and has not connected yet",
                     paired->ship_id, paired->fingerprint.substr(0, 16));
        pairing_.trust_certificate(paired->fingerprint, paired->ship_id);
    }
}

ship::hub::Result ShipPairing::open_window(std::chrono::seconds duration) {
    if (!avahi_) return failure(no_mdns);
    if (duration.count() <= 0) duration = default_window;
    if (duration > std::chrono::hours(24))
        return failure("a pairing window of " + std::to_string(duration.count()) + " s is longer than 24 h");
    if (!browser_) {
        browser_ = std::make_unique<mdns::PairingBrowser>(
            *avahi_, [this](const std::string& instance, const std::vector<std::string>& txt) {
                evaluate(instance, txt);
            });
        browser_->start();
    }
    window_deadline_us_ = now_us() + static_cast<std::uint64_t>(duration.count()) * 1'000'000;
    window_timer_.start(duration, [this] {
        spdlog::info("pairing service: the pairing window closed (time is up)");
        close_window();
    });
    spdlog::info("pairing service: pairing window open for {} s (addCu requests for '{}')", duration.count(),
                 identity_.ship_id);
    changed();
    return std::nullopt;
}

ship::hub::Result ShipPairing::close_window() {
    window_timer_.cancel();
    close_soon_.cancel();
    const bool was_open = browser_ != nullptr;
    browser_.reset();
    window_deadline_us_ = 0;
    if (was_open) changed();
    return std::nullopt;
}

void ShipPairing::report(const std::string& instance, const std::string& trust_id, std::string_view result) {
    last_ = Result{instance, trust_id, std::string(result), now_us()};
    changed();
}

void ShipPairing::evaluate(const std::string& instance, const std::vector<std::string>& txt) {
    if (!browser_ || close_soon_.pending()) return; // one per window: the first accepted one closed it
    auto parsed = mdns::parse_pairing_txt(txt);
    if (!parsed.announcement) {
        if (raw_value(txt, "forId") == identity_.ship_id) {
            spdlog::warn("pairing service: ignoring '{}', addressed to us but unreadable: {}", instance,
                         parsed.error);
            report(instance, raw_value(txt, "trustId"), "invalid");
        } else {
            spdlog::debug("pairing service: ignoring '{}': {}", instance, parsed.error);
        }
        return;
    }
    const auto& a = *parsed.announcement;
    const auto verdict =
        mdns::evaluate_pairing(a, identity_.ship_id, identity_.fingerprint, store_.secret(), store_.guard());
    switch (verdict) {
    case mdns::PairingVerdict::not_for_us:
        spdlog::debug("pairing service: '{}' is for '{}', not for us", instance, a.for_id);
        return;
    case mdns::PairingVerdict::replay:
        spdlog::warn("pairing service: refused '{}' from '{}': its digest was accepted before (replay)",
                     instance, a.trust_id);
        report(instance, a.trust_id, to_string(verdict));
        return;
    case mdns::PairingVerdict::digest_mismatch:
        spdlog::warn("pairing service: refused '{}' from '{}': the HMAC does not verify with our secret (a "
                     "mistyped QR text, or a forged request)",
                     instance, a.trust_id);
        report(instance, a.trust_id, to_string(verdict));
        return;
    case mdns::PairingVerdict::accepted:
        break;
    }
    spdlog::info("pairing service: accepted '{}': device '{}' with certificate {}", instance, a.trust_id,
                 a.trust_par.substr(0, 16));
    // §10.3: one paired device at a time; a new certificate replaces the one paired before.
    const auto previous = store_.paired();
    if (previous && previous->fingerprint != a.trust_par && !previous->ski.empty()) {
        spdlog::info("pairing service: device '{}' (SKI {}) is replaced by '{}'", previous->ship_id,
                     previous->ski, a.trust_id);
        hub_.untrust(previous->ski);
    }
    if (!previous || previous->fingerprint != a.trust_par)
        store_.set_paired(mdns::PairingStore::Paired{a.trust_par, a.trust_id, ""});
    store_.save([](std::optional<std::string> error) {
        if (error) spdlog::error("pairing service: the replay guard could not be stored: {}", *error);
    });
    pairing_.trust_certificate(a.trust_par, a.trust_id);
    report(instance, a.trust_id, to_string(verdict));
    // §4.3: processing stops after one accepted request. Not from inside Avahi's callback.
    close_soon_.start(std::chrono::microseconds(0), [this] {
        spdlog::info("pairing service: the pairing window closed (a device was admitted)");
        close_window();
    });
}

void ShipPairing::certificate_trusted(const std::string& fingerprint, const std::string& ski) {
    auto paired = store_.paired();
    if (!paired || paired->fingerprint != fingerprint || paired->ski == ski) return;
    paired->ski = ski;
    store_.set_paired(paired);
    store_.save();
}

ship::hub::Result ShipPairing::request_pairing(std::string_view qr) {
    if (!avahi_) return failure(no_mdns);
    const auto fields = mdns::parse_installation_qr(qr);
    if (!fields) return failure("not an installation QR text (it starts with SHIP;)");
    auto field = [&](const char* key) -> std::string {
        auto it = fields->find(key);
        return it == fields->end() ? std::string() : it->second;
    };
    const auto ski = ship::normalize_ski(field("SKI"));
    if (!ski) return failure("the QR text has no usable SKI");
    if (*ski == identity_.ski) return failure("the QR text is this node's own");
    const std::string id = field("ID");
    if (id.empty()) return failure("the QR text has no ID");
    std::string fph = field("FPH256");
    for (auto& c : fph)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!mdns::is_upper_hex(fph, 64))
        return failure("the QR text has no FPH256 (64 hex digits): that device offers no Pairing Service");
    const auto secret_bytes = mdns::parse_hex(field("SPSEC"), mdns::pairing_secret_bytes);
    if (!secret_bytes) return failure("the QR text has no SPSEC (32 hex digits)");
    mdns::PairingSecret secret{};
    std::copy(secret_bytes->begin(), secret_bytes->end(), secret.begin());
    if (auto e = hub_.trust(*ski)) return e;
    pairing_.expect_certificate(*ski, fph);
    mdns::PairingAnnouncement a;
    a.for_id = id;
    a.for_par = fph;
    a.trust_id = identity_.ship_id;
    a.trust_par = identity_.fingerprint;
    a.trust_nonce = mdns::random_nonce(); // fresh per request, never derived from the secret
    a = mdns::sign_pairing(a, secret);
    if (!publisher_) publisher_ = std::make_unique<mdns::PairingPublisher>(*avahi_);
    publisher_->announce(identity_.ship_id + "-pairing#1", mdns::encode_pairing_txt(a));
    requested_ski_ = *ski;
    spdlog::info("pairing service: requesting pairing with '{}' (SKI {})", id, *ski);
    check_settled();
    return std::nullopt;
}

ship::hub::Result ShipPairing::stop_request() {
    settle_timer_.cancel();
    if (publisher_) publisher_->withdraw();
    publisher_.reset();
    if (!requested_ski_.empty()) pairing_.expect_certificate(requested_ski_, "");
    requested_ski_.clear();
    return std::nullopt;
}

// §4.2: the request stays on the air until one uninterrupted connection to devA has lasted 15 minutes.
void ShipPairing::check_settled() {
    if (requested_ski_.empty()) return;
    const auto peer = hub_.peer(requested_ski_);
    if (peer && peer->connected && peer->connected_since_us != 0 &&
        now_us() - peer->connected_since_us >=
            static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(settled_after).count())) {
        spdlog::info("pairing service: connected to {} for 15 minutes; withdrawing our pairing request",
                     requested_ski_);
        stop_request();
        return;
    }
    settle_timer_.start(std::chrono::seconds(30), [this] { check_settled(); });
}

} // namespace ship::daemon
