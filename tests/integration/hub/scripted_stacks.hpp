// A SHIP node that settles double connections as ship-go v0.6 or OpenEEBUS does (stack-quirks.md §1), on
// lib/net and lib/ship, on its own strand; its queries are thread-safe.
#pragma once

// ship-go v0.6: keep what the larger SKI dialled, decided after the upgrade, the loser dropped without
// ceremony. OpenEEBUS: first come, a link refused right after its upgrade while its own dial runs.

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "hub_harness.hpp"

namespace ship::hub::it {

enum class Stack {
    shipgo_v06, // hub/hub_connections.go keepThisConnection at 5963bf4
    openeebus,  // ship_node.c ShipNodeOnWebsocketServerConnectionCallback at 9b279f0
};
const char* to_string(Stack stack);

// One node of that stack that trusts exactly one peer SKI and answers SHIP as a trusted, ready node.
class StackPeer {
public:
    struct Stats {
        int dials = 0;                 // dials it started (it never redials on its own)
        int accepted = 0;              // incoming links it kept after the upgrade
        int refused = 0;               // incoming links it dropped right after the upgrade
        int dropped = 0;               // registered links it dropped for a newer one
        int connected = 0;             // times its registered link reached data exchange
        int lost_connected = 0;        // times a registered link in data exchange went away
        bool in_data_exchange = false; // its registered link now
        std::vector<std::string> data; // plain JSON received on its registered link
    };

    StackPeer(Stack stack, tls::Identity identity);
    ~StackPeer();
    StackPeer(const StackPeer&) = delete;
    StackPeer& operator=(const StackPeer&) = delete;

    const std::string& ski() const { return identity_.ski; }
    std::uint16_t port() const { return port_; }
    Stack stack() const { return stack_; }

    // The one peer: its SKI, and where it listens (loopback).
    void trust(const std::string& remote_ski, std::uint16_t remote_port);
    // Starts its dial at `when` (a timer on its strand); it dials only if its stack would (nothing
    // registered, no attempt running).
    void dial_at(Clock::time_point when);
    // SHIP data on its registered link; false if there is none in data exchange.
    bool send_data(const std::string& json);

    Stats stats();
    bool wait(const std::function<bool(const Stats&)>& predicate,
              std::chrono::milliseconds timeout = deadline);

private:
    class Link;
    friend class Link;
    template <typename F>
    auto call(F&& fn) -> decltype(fn());

    void opened(const std::shared_ptr<Link>& link);
    void closed(const std::shared_ptr<Link>& link, const net::CloseInfo& info);
    void completed(Link& link);
    void data(Link& link, const std::string& json);
    void dial();
    template <typename F>
    void update(F&& change);

    Stack stack_;
    tls::Identity identity_;
    std::string remote_ski_;
    std::uint16_t remote_port_ = 0;
    std::uint16_t port_ = 0;

    std::stop_source stop_;
    std::unique_ptr<net::Strand> strand_;
    std::thread thread_;
    // strand only
    std::unique_ptr<net::Server> server_;
    std::unique_ptr<net::Client> client_;
    std::vector<std::shared_ptr<Link>> links_; // every link, until closed
    std::shared_ptr<Link> registered_;
    bool attempt_running_ = false; // OpenEEBUS: an outgoing dial started or a connection accepted
    std::vector<std::unique_ptr<net::Timer>> timers_;

    std::mutex mutex_;
    std::condition_variable changed_;
    Stats stats_;
};

} // namespace ship::hub::it
