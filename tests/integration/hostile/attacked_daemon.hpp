// One shipd under attack and the witnesses of its health: the process, its D-Bus answers, its RSS, and a
// well-behaved bystander SHIP peer in data exchange whose link must survive every hostile case.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "../daemon/dbus_test_support.hpp"
#include "../net/harness.hpp"
#include "../shipd/shipd_process.hpp"
#include "hub/lws/strand_timers.hpp"
#include "hub/peer_connection.hpp"

namespace ship::test::hostile {

// Sanitizer runs set SHIPD_TEST_TIME_SCALE (3 or 5): every time bound here is multiplied by it.
int time_scale();
std::chrono::milliseconds scaled(std::chrono::milliseconds bound);

// True when this program (and so the shipd of the same build) runs under ASan or TSan: their allocators
// keep freed memory in quarantine, so RSS cannot return to a baseline there.
bool sanitized_build();

// VmRSS of a process in KiB (0 if it is gone).
long rss_kib(pid_t pid);

// A SHIP client on its own strand thread (lib/net Client + the daemon's own PeerConnection), dialled to
// shipd and kept in data exchange. Queries are thread-safe.
class Bystander final : public hub::PeerConnectionOwner {
public:
    Bystander(std::uint16_t port, const std::string& daemon_ski);
    ~Bystander() override;

    const std::string& ski() const { return identity_.ski; }
    bool wait_completed(std::chrono::milliseconds timeout);
    bool wait_data(std::size_t count, std::chrono::milliseconds timeout);
    bool ended();
    std::string end_reason();

    void on_state(hub::PeerConnection&, PeerState, const std::string&) override {}
    void on_ship_id(hub::PeerConnection&, const std::string&) override {}
    void on_completed(hub::PeerConnection&) override;
    void on_data(hub::PeerConnection&, const std::string& json) override;
    void on_ended(hub::PeerConnection& connection, const net::CloseInfo& info) override;

private:
    tls::Identity identity_;
    net::test::StrandThread strand_;
    std::unique_ptr<hub::StrandTimers> timers_;       // strand only
    std::unique_ptr<hub::PeerConnection> connection_; // strand only
    std::mutex mutex_;
    std::condition_variable changed_;
    bool completed_ = false;
    std::size_t data_ = 0;
    std::optional<std::string> ended_;
};

struct DaemonLimits {
    unsigned max_handshakes = 64;
    unsigned max_connections = 128;
};

class AttackedDaemon {
public:
    explicit AttackedDaemon(DaemonLimits limits = {});
    ~AttackedDaemon();

    std::uint16_t port() const { return port_; }
    const std::string& ski() const { return ski_; }
    pid_t pid() const { return process_->pid(); }
    long rss_kib() const { return hostile::rss_kib(pid()); }
    std::string log() const { return process_->log(); }
    Client& dbus() { return *dbus_; }
    Bystander& bystander() { return *bystander_; }

    // Process alive and the D-Bus service answering (property Port, method ListPeers).
    bool answers();
    // The bystander still owns its slot (connected, no PeerDisconnected for it) and a SendData reaches it.
    bool bystander_intact(std::string& why);
    // Waits until shipd's RSS is at most `limit_kib`; returns the last reading.
    long wait_rss_at_most(long limit_kib, std::chrono::milliseconds timeout);

private:
    TempDir dir_;
    std::unique_ptr<PrivateBus> bus_;
    std::unique_ptr<ShipdProcess> process_;
    std::unique_ptr<Client> dbus_;
    std::unique_ptr<Bystander> bystander_;
    std::uint16_t port_ = 0;
    std::string ski_;
    std::size_t data_sent_ = 0;
};

} // namespace ship::test::hostile
