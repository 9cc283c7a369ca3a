// SHIP peers for the pairing tests, built on lib/ (the hostile suite's ScriptedPeer): an untrusted client on
// its own thread that asks to pair and grants every prolongation shipd asks for, and a one-shot trusted
// client that runs the whole handshake. Queries are thread-safe; waits have deadlines.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "tls/identity.hpp"

namespace ship::test::pairing {

using namespace std::chrono_literals;

struct PeerOutcome {
    bool tls_ok = false;
    int http_status = 0;    // 0: no HTTP answer (refused inside TLS, or nothing came)
    bool cmi = false;       // CMI exchanged: the SHIP handshake began
    bool pending = false;   // shipd said hello pending: our request waits for a decision
    int prolongations = 0;  // prolongation requests from shipd we granted
    bool approved = false;  // shipd said hello ready after pending
    bool completed = false; // the rest of the handshake finished (data exchange)
    bool aborted = false;   // shipd sent hello aborted
    std::optional<std::uint16_t> close_code;
    std::string close_reason;
    bool ended = false; // the connection is gone
};

class PendingPeer {
public:
    // Starts at once: connects to 127.0.0.1:port and runs until the connection ends or destruction.
    // `waiting` is what our hello ready announces: 31 s makes shipd ask for a prolongation every second
    // (it asks 30 s before our deadline), so every test spans many prolongations.
    PendingPeer(std::uint16_t port, tls::Identity identity, std::chrono::milliseconds waiting = 31s);
    ~PendingPeer(); // hangs up (closes the socket) and joins
    PendingPeer(const PendingPeer&) = delete;
    PendingPeer& operator=(const PendingPeer&) = delete;

    const std::string& ski() const { return identity_.ski; }
    PeerOutcome outcome() const;
    bool wait(const std::function<bool(const PeerOutcome&)>& predicate, std::chrono::milliseconds timeout);
    // The source port of our TCP connection (0 until connected).
    std::uint16_t local_port() const { return local_port_.load(); }

private:
    void run(std::uint16_t port);
    void update(const std::function<void(PeerOutcome&)>& change);

    tls::Identity identity_;
    std::chrono::milliseconds waiting_;
    std::atomic<bool> stop_{false};
    std::atomic<std::uint16_t> local_port_{0};
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    PeerOutcome outcome_;
    std::thread thread_;
};

// A trusted client's whole handshake (TLS, upgrade, CMI, hello ready/ready, protocol, PIN, access methods);
// how long it took, or nullopt with `why` set. The connection is closed when it returns.
std::optional<std::chrono::milliseconds> complete_handshake(std::uint16_t port, const tls::Identity& identity,
                                                            std::chrono::milliseconds timeout,
                                                            std::string& why);

} // namespace ship::test::pairing
