// What the daemon's pairing pieces (the registered agent, the SHIP Pairing Service) ask of the hub, and what
// the hub tells them about pairing requests. Every call and every event runs on the strand.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hub/hub_api.hpp"

namespace ship::hub {

// An unknown peer whose hello waits for a decision (SHIP hello pending, state received-pairing-request).
struct PairingRequest {
    std::uint64_t id = 0; // unique for the daemon's run; an answer names the request, not the SKI
    std::string ski;
    std::string ship_id, brand, model, type; // from mDNS when the peer announces itself, else empty
    std::string host;                        // the remote address of its connection
    std::uint16_t port = 0;
    std::uint64_t deadline_us = 0; // µs since the epoch: undecided by then, the request expires
};

// Implemented by the daemon (daemon/agent.hpp). A request is announced once with pairing_requested and ends
// exactly once with pairing_ended, whatever ends it; `reason` says what did, for people ("approved by
// Trust", "expired: no decision within 120 s", "the peer closed the connection", ...).
class PairingEvents {
public:
    virtual ~PairingEvents() = default;
    virtual void pairing_requested(const PairingRequest& request) = 0;
    virtual void pairing_ended(const PairingRequest& request, const std::string& reason) = 0;
    // A certificate given to PairingApi::trust_certificate connected: its SKI is trusted now.
    virtual void certificate_trusted(const std::string& fingerprint, const std::string& ski) {
        (void)fingerprint;
        (void)ski;
    }
};

class PairingApi {
public:
    virtual ~PairingApi() = default;

    virtual void set_pairing_events(PairingEvents* events) = 0;
    // The requests waiting now, oldest first.
    virtual std::vector<PairingRequest> pairing_requests() const = 0;
    // A decision on one request: approve = Trust (persisted), deny = CancelPairing (the quiet period
    // follows). `who` names the decider in logs and in the reason the request ends with. unknown_peer when
    // that request is no longer waiting (decided, expired, gone): a late answer never touches a newer one.
    virtual Result answer_pairing(std::uint64_t request, bool approve, std::string_view who) = 0;
    // Ends a request without a decision (its asker left): the peer's hello is aborted with `reason`; no quiet
    // period, so the peer may ask again at once.
    virtual Result abandon_pairing(std::uint64_t request, std::string_view reason) = 0;

    virtual std::chrono::seconds pairing_timeout() const = 0;
    // 1 s to 24 h, else invalid_argument. Applies to requests from now on.
    virtual Result set_pairing_timeout(std::chrono::seconds timeout) = 0;

    // Blocked SKIs are refused inside TLS, never dialled, and their connection is closed; persisted.
    virtual Result set_blocked(std::string_view ski, bool blocked) = 0;

    // SHIP Pairing Service (devA side): the device with this certificate fingerprint (64 upper-case hex) and
    // SHIP ID was admitted by a verified announcement. Its first connection is trusted by that fingerprint
    // (the SKI is learned then and persisted in the trust store); a hello of it already pending is approved.
    virtual void trust_certificate(std::string_view fingerprint, std::string_view ship_id) = 0;
    // devZ side: when connecting to `ski`, its certificate must have this fingerprint (from the QR text).
    virtual void expect_certificate(std::string_view ski, std::string_view fingerprint) = 0;
};

} // namespace ship::hub
