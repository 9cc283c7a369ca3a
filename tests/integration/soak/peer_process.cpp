#include "peer_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "tls/identity.hpp"

extern char** environ;

namespace ship::soak {

PeerProcess::PeerProcess(std::filesystem::path dir, std::string ship_id, std::uint16_t port)
    : dir_(std::move(dir))
    , ship_id_(std::move(ship_id))
    , port_(port) {
    std::filesystem::create_directories(dir_);
    ski_ = tls::load_or_create_identity(dir_, {ship_id_, "shipd soak", {}, {}}).ski;
}

PeerProcess::~PeerProcess() {
    kill9();
}

bool PeerProcess::start(const std::string& shipd_ski, std::uint16_t shipd_port, std::uint64_t seed,
                        std::chrono::milliseconds timeout) {
    const char* binary = std::getenv("SHIPD_SOAK_PEER");
    if (!binary) throw std::runtime_error("SHIPD_SOAK_PEER is not set");
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    std::vector<std::string> args = {binary,
                                     dir_.string(),
                                     std::to_string(port_),
                                     ship_id_,
                                     shipd_ski,
                                     std::to_string(shipd_port),
                                     std::to_string(seed)};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    const auto log_path = dir_ / "peer.log";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    const int rc = posix_spawn(&pid_, binary, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        pid_ = -1;
        throw std::runtime_error(std::string("cannot start soak_peer: ") + std::strerror(rc));
    }
    const auto until = std::chrono::steady_clock::now() + timeout;
    std::string text;
    while (text.find("READY") == std::string::npos) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        pollfd fd{out[0], POLLIN, 0};
        if (left.count() <= 0 || poll(&fd, 1, static_cast<int>(left.count())) <= 0) break;
        char buf[256];
        const auto n = read(out[0], buf, sizeof buf);
        if (n <= 0) break; // exited before READY
        text.append(buf, static_cast<std::size_t>(n));
    }
    close(out[0]);
    if (text.find("READY") != std::string::npos) return true;
    kill9();
    return false;
}

void PeerProcess::kill9() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
}

std::string PeerProcess::log() const {
    std::ifstream in(dir_ / "peer.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace ship::soak
