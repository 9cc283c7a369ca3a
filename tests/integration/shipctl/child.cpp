#include "child.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace ship::test {

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> make_env(const EnvOverrides& overrides) {
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e) {
        const std::string entry(*e);
        const auto name = entry.substr(0, entry.find('='));
        if (!overrides.count(name)) env.push_back(entry);
    }
    for (const auto& [name, value] : overrides)
        env.push_back(name + "=" + value);
    return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
    std::vector<char*> out;
    for (auto& s : strings)
        out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

// Spawns in a new process group with the given descriptors on 0, 1 and 2.
pid_t spawn(std::vector<std::string> argv, const EnvOverrides& env, int in, int out, int err) {
    auto env_strings = make_env(env);
    auto argp = pointers(argv);
    auto envp = pointers(env_strings);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in, 0);
    posix_spawn_file_actions_adddup2(&actions, out, 1);
    posix_spawn_file_actions_adddup2(&actions, err, 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0);
    // The test binary may block signals; the child starts with none blocked and default handlers.
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, argp[0], &actions, &attr, argp.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    return pid;
}

int decode(int st) {
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

} // namespace

RunResult run(const std::vector<std::string>& argv, const EnvOverrides& env, const std::string& input,
              std::chrono::milliseconds timeout) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
        throw std::runtime_error("pipe failed");
    const pid_t pid = spawn(argv, env, in[0], out[1], err[1]);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    // Small inputs fit the pipe buffer; the child reads them whenever it wants.
    if (!input.empty() && ::write(in[1], input.data(), input.size()) != static_cast<ssize_t>(input.size()))
        throw std::runtime_error("could not write the child's input");
    close(in[1]);

    RunResult result;
    const auto until = Clock::now() + timeout;
    bool out_open = true, err_open = true, late = false;
    while (out_open || err_open) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
        if (left <= 0) {
            late = true;
            break;
        }
        pollfd fds[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
        if (poll(fds, 2, static_cast<int>(left)) < 0 && errno != EINTR) break;
        char buffer[4096];
        for (int i = 0; i < 2; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0)
                (i == 0 ? result.out : result.err).append(buffer, static_cast<std::size_t>(n));
            else
                (i == 0 ? out_open : err_open) = false;
        }
    }
    close(out[0]);
    close(err[0]);
    if (late) kill(-pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    result.status = late ? -1 : decode(st);
    return result;
}

Child::Child(const std::vector<std::string>& argv, const EnvOverrides& env) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) throw std::runtime_error("pipe failed");
    pid_ = spawn(argv, env, in[0], out[1], out[1]);
    close(in[0]);
    close(out[1]);
    in_ = in[1];
    out_ = out[0];
}

Child::~Child() {
    if (in_ >= 0) close(in_);
    // The whole group: a shell's background jobs (a shipd the walkthrough started) live in it too.
    kill(-pid_, SIGKILL);
    if (!status_) waitpid(pid_, nullptr, 0);
    close(out_);
}

void Child::write(const std::string& text) {
    if (::write(in_, text.data(), text.size()) != static_cast<ssize_t>(text.size()))
        throw std::runtime_error("could not write to the child");
}

void Child::close_input() {
    if (in_ >= 0) close(in_);
    in_ = -1;
}

void Child::read_some(int timeout_ms) {
    if (eof_) {
        // Nothing more can come; only the exit is left to wait for.
        if (timeout_ms > 0) poll(nullptr, 0, timeout_ms);
        return;
    }
    pollfd fd{out_, POLLIN, 0};
    if (poll(&fd, 1, timeout_ms) <= 0) return;
    char buffer[4096];
    const ssize_t n = read(out_, buffer, sizeof buffer);
    if (n > 0)
        output_.append(buffer, static_cast<std::size_t>(n));
    else
        eof_ = true;
}

void Child::reap() {
    int st = 0;
    if (!status_ && waitpid(pid_, &st, WNOHANG) == pid_) status_ = decode(st);
}

bool Child::wait_for(const std::string& text, std::chrono::milliseconds timeout, std::size_t from) {
    const auto until = Clock::now() + timeout;
    auto found = [&] { return output_.size() > from && output_.find(text, from) != std::string::npos; };
    for (;;) {
        if (found()) return true;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
        if (left <= 0) return false;
        reap();
        if (status_) {
            // It exited: what it wrote is all there will be (unless something it started still writes).
            const std::size_t before = output_.size();
            read_some(0);
            if (output_.size() == before) return found();
            continue;
        }
        read_some(static_cast<int>(std::min<long long>(left, 100)));
    }
}

void Child::signal(int sig) {
    if (!status_) kill(-pid_, sig);
}

std::optional<int> Child::wait_exit(std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    for (;;) {
        reap();
        if (status_) {
            read_some(0);
            return status_;
        }
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
        if (left <= 0) return std::nullopt;
        // Output keeps flowing while we wait (a full pipe would stall the child).
        read_some(static_cast<int>(std::min<long long>(left, 20)));
    }
}

} // namespace ship::test
