#include "shipd_process.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace ship::test {

namespace {
int counter = 0;
}

ShipdProcess::ShipdProcess(std::vector<std::string> args, std::filesystem::path log)
    : log_(std::move(log)) {
    const char* binary = std::getenv("SHIPD_BINARY");
    if (!binary) throw std::runtime_error("SHIPD_BINARY is not set");
    socket_path_ =
        log_.parent_path() / ("notify-" + std::to_string(getpid()) + "-" + std::to_string(++counter));
    notify_fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path_.c_str(), sizeof(addr.sun_path) - 1);
    if (bind(notify_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
        throw std::runtime_error("cannot bind the notify socket " + socket_path_.string());

    std::vector<std::string> env_strings;
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, "NOTIFY_SOCKET=", 14) != 0) env_strings.emplace_back(*e);
    env_strings.push_back("NOTIFY_SOCKET=" + socket_path_.string());
    std::vector<char*> envp;
    for (auto& e : env_strings)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    args.insert(args.begin(), binary);
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 2, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    const int rc = posix_spawn(&pid_, binary, &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error(std::string("cannot start shipd: ") + std::strerror(rc));
}

ShipdProcess::~ShipdProcess() {
    if (!status_) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    close(notify_fd_);
    std::filesystem::remove(socket_path_);
}

void ShipdProcess::read_notes(int timeout_ms) {
    pollfd p{notify_fd_, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return;
    char buffer[4096];
    for (;;) {
        const ssize_t n = recv(notify_fd_, buffer, sizeof(buffer), 0);
        if (n <= 0) return;
        std::istringstream lines(std::string(buffer, static_cast<std::size_t>(n)));
        for (std::string line; std::getline(lines, line);)
            notes_.push_back(line);
    }
}

bool ShipdProcess::wait_notify(const std::string& what, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (const auto& n : notes_)
            if (n.find(what) != std::string::npos) return true;
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now())
                .count();
        if (left <= 0) return false;
        if (wait_exit(std::chrono::milliseconds(0))) return false; // it died
        read_notes(static_cast<int>(std::min<long>(left, 50)));
    }
}

void ShipdProcess::signal(int sig) {
    kill(pid_, sig);
}

std::optional<int> ShipdProcess::wait_exit(std::chrono::milliseconds timeout) {
    if (status_) return status_;
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int st = 0;
        const pid_t r = waitpid(pid_, &st, WNOHANG);
        if (r == pid_) {
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            read_notes(0);
            return status_;
        }
        if (std::chrono::steady_clock::now() >= until) return std::nullopt;
        // No child-exit event to wait on without a SIGCHLD handler: poll the notify socket meanwhile.
        read_notes(5);
    }
}

std::string ShipdProcess::log() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::uint16_t free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
}

} // namespace ship::test
