// The event loop never waits on the disk: a real shipd runs with every fsync/fdatasync in its state dir
// slowed to seconds (LD_PRELOAD slow_fsync.c, like an SD card). Peer A's handshake makes it auto-accept A and
// start a trust write; peer B must complete its own SHIP handshake while that write is still asleep in the
// kernel. D-Bus Trust is acknowledged only once its change is on disk, and the writer thread is gone
// afterwards.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "../hostile/attacked_daemon.hpp"

using namespace ship::test;
using namespace ship::test::hostile;
using Clock = std::chrono::steady_clock;

namespace {

// Sets an environment variable for the processes started while it lives (posix_spawn copies environ).
class ScopedEnv {
public:
    ScopedEnv(const char* name, const std::string& value)
        : name_(name) {
        if (const char* old = std::getenv(name)) old_ = old;
        setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv() {
        if (old_)
            setenv(name_, old_->c_str(), 1);
        else
            unsetenv(name_);
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
    const char* name_;
    std::optional<std::string> old_;
};

// The shim's reports ("begin fdatasync tid=.. main=0 /path"), read from a pipe whose write end shipd
// inherits.
class SyncReports {
public:
    SyncReports() {
        if (pipe2(fds_, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
        fcntl(fds_[1], F_SETFD, 0); // inherited by the shipd spawned next
    }
    ~SyncReports() {
        close_write_end();
        close(fds_[0]);
    }
    SyncReports(const SyncReports&) = delete;
    SyncReports& operator=(const SyncReports&) = delete;

    int write_fd() const { return fds_[1]; }
    void close_write_end() {
        if (fds_[1] >= 0) close(fds_[1]);
        fds_[1] = -1;
    }
    // The next report starting with `prefix` (every report is kept in seen()); nullopt at the deadline or
    // when shipd is gone.
    // The next report starting with `prefix` and mentioning `about` (a file name part), skipping others.
    std::optional<std::string> next(const std::string& prefix, std::chrono::milliseconds timeout,
                                    const std::string& about = {}) {
        const auto until = Clock::now() + timeout;
        for (;;) {
            for (auto newline = buffer_.find('\n'); newline != std::string::npos;
                 newline = buffer_.find('\n')) {
                std::string line = buffer_.substr(0, newline);
                buffer_.erase(0, newline + 1);
                seen_.push_back(line);
                if (line.rfind(prefix, 0) == 0 && line.find(about) != std::string::npos) return line;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
            pollfd p{fds_[0], POLLIN, 0};
            // At least one look, also with no time left: what has arrived already still counts.
            if (poll(&p, 1, static_cast<int>(std::max<long>(0, left.count()))) <= 0) {
                if (left.count() <= 0) return std::nullopt;
                continue;
            }
            char chunk[4096];
            const ssize_t n = read(fds_[0], chunk, sizeof chunk);
            if (n <= 0) return std::nullopt;
            buffer_.append(chunk, static_cast<std::size_t>(n));
        }
    }
    const std::vector<std::string>& seen() const { return seen_; }

private:
    int fds_[2] = {-1, -1};
    std::string buffer_;
    std::vector<std::string> seen_;
};

std::string field(const std::string& report, const std::string& name) {
    const auto at = report.find(" " + name + "=");
    if (at == std::string::npos) return {};
    const auto from = at + name.size() + 2;
    return report.substr(from, report.find(' ', from) - from);
}

std::size_t thread_count(pid_t pid) {
    std::size_t n = 0;
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
        ++n;
    return n;
}

bool task_exists(pid_t pid, const std::string& tid) {
    return std::filesystem::exists("/proc/" + std::to_string(pid) + "/task/" + tid);
}

long ms(Clock::duration d) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

std::set<std::string> trusted_on_the_bus(Client& client) {
    std::set<std::string> trusted;
    for (const auto& p : client.hub().ListPeers())
        if (p.get<3>()) trusted.insert(p.get<0>());
    return trusted;
}

// shipd's log on the test's output when the test ends, passed or not: it explains a failure.
struct PrintLog {
    const ShipdProcess* shipd = nullptr;
    ~PrintLog() {
        if (shipd) std::cout << "[slowdisk] shipd log:\n" << shipd->log() << "\n";
    }
};

// Trust over D-Bus with a timeout above the default 25 s: with syncs this slow an answer may take a while.
void trust(Client& client, const std::string& ski) {
    client.hub()
        .raw()
        .callMethod("Trust")
        .onInterface("org.shipd.Hub1")
        .withTimeout(std::chrono::microseconds(scaled(60s)))
        .withArguments(ski);
}

} // namespace

TEST_CASE("a slow disk does not stall the loop: peer B completes SHIP while peer A's trust write sleeps in "
          "fsync",
          "[slowdisk]") {
    const char* shim = std::getenv("SHIPD_SLOW_FSYNC_SHIM");
    REQUIRE(shim);
    const auto bound = scaled(1000ms); // B's whole handshake, from the moment A's write began
    const auto delay = 2 * bound;      // every fsync/fdatasync under the state dir
    TempDir dir;
    PrivateBus bus(dir.path);
    const auto state = dir.path / "state";

    // The certificate is written (and synced) before the shim is in place: only trust writes are slow.
    {
        ShipdProcess print({"--print-ski", "--state-dir", state.string()}, dir.path / "print-ski.log");
        REQUIRE(print.wait_exit(scaled(30s)) == 0);
    }
    const auto slow_dir = std::filesystem::canonical(state).string();

    SyncReports reports;
    std::unique_ptr<ShipdProcess> shipd;
    {
        ScopedEnv preload("LD_PRELOAD", shim);
        ScopedEnv where("SHIPD_SLOW_FSYNC_DIR", slow_dir);
        ScopedEnv how_long("SHIPD_SLOW_FSYNC_MS", std::to_string(delay.count()));
        ScopedEnv notify("SHIPD_SLOW_FSYNC_NOTIFY_FD", std::to_string(reports.write_fd()));
        // ASan insists on being first in the library list; the shim is harmless in front of it.
        const char* asan = std::getenv("ASAN_OPTIONS");
        ScopedEnv asan_order("ASAN_OPTIONS", std::string(asan ? asan : "") + (asan && *asan ? ":" : "") +
                                                 "verify_asan_link_order=0");
        shipd = std::make_unique<ShipdProcess>(
            std::vector<std::string>{"--auto-accept", "--no-mdns", "--port", "0", "--state-dir",
                                     state.string(), "--bus-address", bus.address(), "--log-level", "info"},
            dir.path / "shipd.log");
    }
    reports.close_write_end();
    PrintLog print_log{shipd.get()};
    REQUIRE(shipd->wait_notify("READY=1", scaled(10s)));
    Client client(bus.address());
    const std::string daemon_ski = client.hub().LocalSKI();
    const std::uint16_t port = client.hub().Port();
    std::cout << "[slowdisk] every sync under the state dir takes " << delay.count() << " ms; shipd has "
              << thread_count(shipd->pid()) << " threads at rest\n";

    // A completes its handshake; shipd auto-accepts it and starts writing that down.
    Bystander a(port, daemon_ski);
    // A's trust write (a first start also writes the pairing secret, on the same writer, slowed the same).
    const auto begin = reports.next("begin ", scaled(20s), "/trust.");
    REQUIRE(begin);
    const auto write_began = Clock::now();
    std::cout << "[slowdisk] A's trust write began: " << *begin << "\n";

    // B dials now, while that write sleeps.
    Bystander b(port, daemon_ski);
    REQUIRE(b.wait_completed(scaled(20s)));
    const auto b_took = Clock::now() - write_began;
    std::cout << "[slowdisk] B completed its SHIP handshake " << ms(b_took) << " ms after A's write began\n";
    CHECK(ms(b_took) < bound.count());
    // And the sync itself was not on the event loop's thread (main runs the strand).
    CHECK(field(*begin, "main") == "0");
    REQUIRE(a.wait_completed(scaled(20s)));

    // Acknowledged only once durable: the reply to Trust waits for (at least) one slow sync. The first call
    // also waits for A's and B's writes, so the second one measures a change on its own.
    trust(client, "1111111111111111111111111111111111111111");
    const auto trust_began = Clock::now();
    trust(client, "2222222222222222222222222222222222222222");
    const auto ack = Clock::now() - trust_began;
    std::cout << "[slowdisk] a Trust was acknowledged after " << ms(ack) << " ms (one sync: " << delay.count()
              << " ms)\n";
    CHECK(ms(ack) >= delay.count());

    // The writer thread that did the syncs ends once its queue is empty. No event tells when a thread has
    // left the kernel's task list, so its /proc entry is read until it is gone or time is up.
    const std::string writer_tid = field(*begin, "tid");
    const auto until = Clock::now() + scaled(5s);
    while (task_exists(shipd->pid(), writer_tid) && Clock::now() < until)
        std::this_thread::sleep_for(10ms);
    CHECK_FALSE(task_exists(shipd->pid(), writer_tid));
    std::cout << "[slowdisk] afterwards shipd has " << thread_count(shipd->pid()) << " threads\n";

    // What was acknowledged survives kill -9: the next shipd (normal disk) trusts A, B and the two SKIs.
    const auto before = trusted_on_the_bus(client);
    CHECK(before.size() == 4);
    shipd->signal(SIGKILL);
    REQUIRE(shipd->wait_exit(scaled(10s)) == 128 + SIGKILL);
    while (reports.next("", 0ms)) { // shipd is gone: what is left in the pipe, then its end
    }
    for (const auto& line : reports.seen())
        std::cout << "[slowdisk] shim: " << line << "\n";
    ShipdProcess again(
        {"--no-mdns", "--port", "0", "--state-dir", state.string(), "--bus-address", bus.address()},
        dir.path / "shipd-again.log");
    REQUIRE(again.wait_notify("READY=1", scaled(10s)));
    Client client_again(bus.address());
    CHECK(trusted_on_the_bus(client_again) == before);
}
