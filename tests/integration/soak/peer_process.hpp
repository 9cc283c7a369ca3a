// A soak_peer child process ($SHIPD_SOAK_PEER): started with a fixed identity directory and listening port,
// killed with SIGKILL only (its sockets vanish without a close) and reaped by PID. Restartable.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace ship::soak {

class PeerProcess {
public:
    // Creates the identity in `dir` now, so ski() is known before the first start.
    PeerProcess(std::filesystem::path dir, std::string ship_id, std::uint16_t port);
    ~PeerProcess(); // kill -9 if running
    PeerProcess(const PeerProcess&) = delete;
    PeerProcess& operator=(const PeerProcess&) = delete;

    const std::string& ski() const { return ski_; }
    const std::string& ship_id() const { return ship_id_; }
    std::uint16_t port() const { return port_; }
    bool running() const { return pid_ > 0; }

    // Starts it and waits for its READY line (false at the deadline or if it exited: see log()).
    bool start(const std::string& shipd_ski, std::uint16_t shipd_port, std::uint64_t seed,
               std::chrono::milliseconds timeout);
    // SIGKILL and reap.
    void kill9();
    std::string log() const;

private:
    std::filesystem::path dir_;
    std::string ship_id_, ski_;
    std::uint16_t port_;
    pid_t pid_ = -1;
};

} // namespace ship::soak
