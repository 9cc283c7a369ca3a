// The hub: owns every SHIP connection of the node on the strand — accepts and dials, applies the
// double-connection rule through the registry, keeps trust, redials, and tells applications what happened.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "hub/connect_requests.hpp"
#include "hub/dial_scheduler.hpp"
#include "hub/hub_api.hpp"
#include "hub/name_resolver.hpp"
#include "hub/pairing.hpp"
#include "hub/pairing_api.hpp"
#include "hub/peer_connection.hpp"
#include "hub/peer_rules.hpp"
#include "hub/ports.hpp"
#include "hub/registry.hpp"
#include "hub/trust_store.hpp"

namespace ship::hub {

struct HubConfig {
    std::string ship_id;
    std::string certificate_pem, private_key_pem, local_ski;
    std::string qr_code; // the installation QR text (lib/mdns builds it)

    std::string listen_address; // "" = every address; used when listen_addresses is empty
    // Numeric addresses to bind, one server each, all on the same port (net::resolve_listen_addresses).
    std::vector<std::string> listen_addresses;
    std::uint16_t port = 4711; // 0 = a free port, see port()
    bool tls12_only = false;

    bool auto_accept = false;
    bool wait_for_trust = true;
    unsigned max_connections = 32;
    unsigned max_handshakes = 8;
    DoubleConnectionRule rule = DoubleConnectionRule::spec;
    // Untrusted peers: their own budget, request deadline and quiet period (lib/hub/pairing.hpp).
    PairingLimits pairing;

    net::LinkSettings link;
    std::chrono::milliseconds connect_timeout{10'000};
    // How long a Connect that reports (connect_and_report) waits for data exchange: below the 25 s D-Bus
    // clients wait for a reply by default, so they get Timeout rather than NoReply.
    std::chrono::milliseconds connect_wait{20'000};
    ship::Timers ship_timers;
    std::chrono::milliseconds passive_wait = hub::passive_wait;
    // A double connection with a peer whose rule is not known yet: how long the larger SKI leaves the peer to
    // decide first (hub/peer_rules.hpp).
    std::chrono::milliseconds verdict_wait = ContestTimes{}.verdict_wait;
    // A link to a peer we hold in data exchange arrives: the one we hold must answer a ping within this, or
    // it is taken for dead (a peer that rebooted dials again while its old TCP connection still looks open).
    std::chrono::milliseconds probe_bound{2000};
    std::optional<std::uint64_t> random_seed; // tests; otherwise from std::random_device

    // Called on the strand when AutoAccept changes (mDNS `register` follows it).
    std::function<void(bool)> on_auto_accept_changed;
};

// Loop only: construct it on the loop's thread, before the loop runs; it registers its stop handler there.
// Stop: every connection gets one polite close, dials are cancelled, then HubLoop::finish(). `loop` and
// `network` outlive it (on the strand: StrandLoop and LwsNetwork, hub/lws/).
class Hub final : public HubApi, public PairingApi, private PeerConnectionOwner {
public:
    Hub(HubLoop& loop, Network& network, HubConfig config, TrustStore trust);
    ~Hub() override;
    Hub(const Hub&) = delete;
    Hub& operator=(const Hub&) = delete;

    void set_events(HubEvents* events) { events_ = events; }
    // Starts listening (throws std::runtime_error if the port cannot be bound) and schedules a dial for every
    // trusted peer with a known address.
    void start();

    // The mDNS view (the whole of it, each time it changes).
    void set_discovered(std::vector<DiscoveredService> services);

    // For tests and diagnostics.
    const Registry& registry() const noexcept { return registry_; }
    const DialScheduler& dials() const noexcept { return scheduler_; }
    std::size_t live_connections() const noexcept { return connections_.size(); }
    std::size_t held_links() const noexcept { return held_links_.size(); } // contending or closing, unbuilt
    bool in_doubt(std::string_view ski) const {
        return doubts_.contains(ski);
    } // a double connection to settle
    std::size_t pending_timers() const { return timers_.pending(); }
    std::optional<DoubleConnectionRule> learned_rule(const std::string& ski) const {
        return rules_.learned(ski);
    }

    // HubApi
    std::string local_ski() const override { return config_.local_ski; }
    std::string ship_id() const override { return config_.ship_id; }
    std::uint16_t port() const override;
    std::string qr_code() const override { return config_.qr_code; }
    bool auto_accept() const override { return config_.auto_accept; }
    void set_auto_accept(bool on) override;
    bool wait_for_trust() const override { return config_.wait_for_trust; }
    void set_wait_for_trust(bool on) override { config_.wait_for_trust = on; }
    std::vector<PeerInfo> list_peers() const override;
    std::optional<PeerInfo> peer(std::string_view ski) const override;
    std::vector<DiscoveredService> list_discovered() const override;
    Result trust(std::string_view ski) override;
    Result untrust(std::string_view ski) override;
    Result connect(std::string_view ski, std::string_view host, std::uint16_t port) override;
    Result disconnect(std::string_view ski, std::string_view reason) override;
    Result cancel_pairing(std::string_view ski) override;
    Result send_data(std::string_view ski, std::string_view json) override;
    void when_persisted(std::function<void(Result)> done) override;
    std::vector<std::string> listen_addresses() const override;
    Result connect_and_report(std::string_view ski, std::string_view host, std::uint16_t port,
                              ConnectDone done) override;

    // PairingApi (lib/hub/hub_pairing.cpp)
    void set_pairing_events(PairingEvents* events) override { pairing_events_ = events; }
    std::vector<PairingRequest> pairing_requests() const override;
    Result answer_pairing(std::uint64_t request, bool approve, std::string_view who) override;
    Result abandon_pairing(std::uint64_t request, std::string_view reason) override;
    std::chrono::seconds pairing_timeout() const override { return pairing_.limits().timeout; }
    Result set_pairing_timeout(std::chrono::seconds timeout) override;
    Result set_blocked(std::string_view ski, bool blocked) override;
    void trust_certificate(std::string_view fingerprint, std::string_view ship_id) override;
    void expect_certificate(std::string_view ski, std::string_view fingerprint) override;
    const PairingBook& pairing_book() const noexcept { return pairing_; }

private:
    class DialAttempt;
    class HeldLink;
    // A double connection in doubt (lib/hub/README.md "Double connections"): since when, and the timer that
    // judges it again.
    struct Doubt {
        SteadyTime since;
        TimerService::Id timer = 0;
        SteadyTime until{};
    };

    // PeerConnectionOwner
    void on_state(PeerConnection& connection, PeerState state, const std::string& error) override;
    void on_ship_id(PeerConnection& connection, const std::string& ship_id) override;
    void on_completed(PeerConnection& connection) override;
    void on_data(PeerConnection& connection, const std::string& json) override;
    void on_ended(PeerConnection& connection, const net::CloseInfo& info) override;

    net::Admission admit(const std::shared_ptr<net::Link>& link);
    std::function<void()> dial(const std::string& ski, const PeerAddress& address, DialTicket ticket);
    std::vector<PeerAddress> dial_candidates(const std::string& ski) const;
    bool dial_next(const std::shared_ptr<DialAttempt>& attempt); // false: no address left to try
    void dial_link_failed(const std::shared_ptr<DialAttempt>& attempt, const net::CloseInfo& info);
    void dial_attempt_over(std::uint64_t attempt_id);
    void dial_opened(const std::shared_ptr<DialAttempt>& attempt);
    // A dial or a connection with `ski` failed: LastError, State error (when no connection is left),
    // PeerStateChanged; and a Connect waiting for this address learns it.
    void report_failure(const std::string& ski, const std::string& text, bool is_timeout,
                        const std::optional<PeerAddress>& dialled);

    // Registers a new connection if the rule lets it win; returns it (null: it lost, or was held back).
    std::shared_ptr<PeerConnection> offer(const std::shared_ptr<net::Link>& link, Direction direction,
                                          std::vector<std::vector<std::uint8_t>> early, bool wait_over,
                                          std::optional<SteadyTime> arrived = std::nullopt);
    void held_ended(std::uint64_t link_id, const net::CloseInfo& info);
    void close_held(const std::string& ski, std::uint16_t code, std::string_view reason);

    // Double connections (peer_rules.hpp): hold a link back while the peer may still decide, judge, act.
    std::shared_ptr<HeldLink> hold_contending(const std::shared_ptr<net::Link>& link, Direction direction);
    bool has_contending(const std::string& ski) const;
    void begin_doubt(const std::string& ski);
    void end_doubt(const std::string& ski);
    Contest contest_view(const std::string& ski, std::optional<ContestLink> extra) const;
    void contest(const std::string& ski);
    void learn_from_close(const std::string& ski, Direction closed, const net::CloseInfo& info,
                          bool peer_spoke);
    ship::ConnectionConfig sme_config(const std::string& ski) const;
    bool is_owner(const PeerConnection& connection) const;
    // The connection that owns the slot of `ski` (alive), or null.
    PeerConnection* owner_of(const std::string& ski) const;
    std::optional<PeerAddress> address_for(const std::string& ski) const;

    // Known peers (trusted, discovered or connected) and their D-Bus objects.
    PeerInfo& record(const std::string& ski);
    void publish(const std::string& ski);
    void forget_if_unknown(const std::string& ski);
    void refresh_record(const std::string& ski);

    void shutdown();
    void maybe_finish();

    // Pairing (lib/hub/hub_pairing.cpp): untrusted connections, their requests, blocking.
    bool untrusted_peer(const net::Link& link);
    std::optional<net::Admission> admit_untrusted(const std::shared_ptr<net::Link>& link);
    std::optional<std::string> refuse_in_tls(const std::string& ski, const std::string& remote);
    void pairing_registered(PeerConnection& connection);
    void pairing_state(PeerConnection& connection, PeerState state);
    void pairing_ended(const PeerConnection& connection, const net::CloseInfo& info);
    void pairing_expired(const PairingBook::Entry& entry);
    // Ends the request of this connection (if one was asked) with `reason`, and takes it out of the book.
    void end_request(std::uint64_t connection_id, const std::string& reason);
    void finish_request(const PairingBook::Entry& entry, const std::string& reason);
    PairingRequest request_of(const PairingBook::Entry& entry) const;
    PeerConnection* pending_connection(const std::string& ski);
    void approve_pending(PeerConnection& connection, const std::string& reason);
    void deny_pending(PeerConnection& connection, const std::string& reason, bool quiet);
    void approve_all_pending(const std::string& reason);
    std::size_t trusted_connections() const;
    std::size_t trusted_handshakes();

    HubLoop& loop_;
    Network& network_;
    HubConfig config_;
    TrustStore trust_;
    PeerRules rules_;
    HubEvents* events_ = nullptr;
    std::stop_token stop_;
    bool stopping_ = false;

    TimerService& timers_;
    TimerService& closing_timers_; // still firing while the daemon stops: the SMEs' close bounds
    SeededRandom random_;
    Registry registry_;
    DialScheduler scheduler_;
    PairingBook pairing_;
    BurstLog refused_log_;
    PairingEvents* pairing_events_ = nullptr;
    std::set<std::uint64_t> untrusted_ids_; // connections admitted untrusted, until trusted or ended
    // Connections not yet seen in data exchange: admit counts the handshakes in progress over these, not over
    // every connection (that scan made each handshake cost O(connections held); issue 13's bench).
    std::set<std::uint64_t> handshaking_ids_;
    std::map<std::string, std::string, std::less<>> trusted_certificates_;  // fingerprint → SHIP ID
    std::map<std::string, std::string, std::less<>> expected_certificates_; // SKI → fingerprint
    std::map<std::uint64_t, std::uint64_t> request_deadlines_us_;           // connection → wall deadline
    ContestTimes contest_times_;
    std::map<std::string, Doubt, std::less<>> doubts_;

    ConnectRequests connects_;
    // The address of a Connect whose dial failed, kept in memory (never stored) and dialled only while no
    // other address is known: the retry policy still reaches a peer that was not up yet.
    std::map<std::string, PeerAddress, std::less<>> unproven_addresses_;

    std::map<std::uint64_t, std::shared_ptr<PeerConnection>> connections_; // every built one, until it ends
    std::map<std::uint64_t, std::shared_ptr<DialAttempt>> dial_attempts_;  // dials not yet open, by attempt
    std::uint64_t last_attempt_id_ = 0;
    NameResolver resolver_; // after everything its results reach: destroyed (closed) first
    std::map<std::uint64_t, std::shared_ptr<HeldLink>> held_links_; // unbuilt: contending or closing
    std::map<std::string, PeerInfo, std::less<>> peers_;
    std::map<std::string, DiscoveredService, std::less<>> discovered_;
};

} // namespace ship::hub
