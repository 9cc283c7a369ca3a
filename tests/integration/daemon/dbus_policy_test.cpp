// dbus/org.shipd.Hub1.conf on a private system-type dbus-daemon, with shipd's authorization behind it (no
// polkitd here: its fallback rule): root and the system user shipd may own the name, root and group shipd
// may act and set, anyone else may only introspect and read (ListPeers included), and DataReceived reaches
// root and group shipd but not other users. Clients run as `nobody` or `shipd` via busctl and gdbus
// (needs root to switch users; shipd's own tests run as root in CI). Where the machine has no user shipd,
// this process gets one in a private mount namespace (see ShipdAccount).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stop_token>

#include "dbus_service.hpp"
#include "dbus_test_support.hpp"

using namespace ship::test;

namespace {

constexpr uid_t nobody = 65534;
constexpr gid_t nogroup = 65534;

// The account shipd.service runs as. When the machine has none (shipd not installed), this process and its
// children (dbus-daemon, busctl, gdbus) get one: a private mount namespace where /etc/passwd and /etc/group
// are copies with `shipd` added under an unused system ID. Nothing else sees it and it ends with the process,
// so there is nothing to clean up. Set up during static initialisation on the main thread, which is the one
// that starts every child (a mount namespace belongs to the thread that unshared it).
class ShipdAccount {
public:
    ShipdAccount() {
        if (geteuid() != 0) {
            unavailable_ = "not root";
            return;
        }
        const bool has_user = getpwnam("shipd") != nullptr, has_group = getgrnam("shipd") != nullptr;
        if (has_user && has_group) return; // the real one, e.g. from the installed package
        if (has_user != has_group) {
            unavailable_ = "this machine has only one of user and group shipd";
            return;
        }
        id_t id = 999;
        while (id >= 100 && (getpwuid(id) != nullptr || getgrgid(id) != nullptr))
            --id;
        if (id < 100) {
            unavailable_ = "no free system ID for a test user shipd";
            return;
        }
        char dir_template[] = "/tmp/shipd-policy-test-XXXXXX";
        if (mkdtemp(dir_template) == nullptr) {
            unavailable_ = "mkdtemp failed";
            return;
        }
        dir_ = dir_template;
        const auto with_line = [&](const char* etc_file, const std::string& line) {
            std::ifstream in(etc_file);
            std::ostringstream text;
            text << in.rdbuf();
            const auto copy = dir_ / std::filesystem::path(etc_file).filename();
            std::ofstream(copy) << text.str() << line << '\n';
            chmod(copy.c_str(), 0644);
            return copy;
        };
        const auto ids = std::to_string(id);
        const auto passwd =
            with_line("/etc/passwd", "shipd:x:" + ids + ":" + ids + "::/nonexistent:/usr/sbin/nologin");
        const auto group = with_line("/etc/group", "shipd:x:" + ids + ":");
        if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            mount(passwd.c_str(), "/etc/passwd", nullptr, MS_BIND, nullptr) != 0 ||
            mount(group.c_str(), "/etc/group", nullptr, MS_BIND, nullptr) != 0)
            unavailable_ = std::string("private mount namespace: ") + std::strerror(errno);
    }
    ~ShipdAccount() {
        std::error_code ignored;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    }
    // Empty when user and group shipd can be used; else why not.
    const std::string& unavailable() const { return unavailable_; }

private:
    std::string unavailable_;
    std::filesystem::path dir_;
};
const ShipdAccount shipd_account;

// A child process as another user, with stdout+stderr captured; killed by PID if still running at the end.
class Child {
public:
    Child(uid_t uid, gid_t gid, std::vector<std::string> args) {
        int out[2];
        REQUIRE(pipe2(out, O_CLOEXEC) == 0);
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        pid_ = fork();
        if (pid_ == 0) { // only async-signal-safe calls until exec
            dup2(out[1], 1);
            dup2(out[1], 2);
            // The group as a supplementary one too, as login and systemd's initgroups() give it.
            if (setgroups(1, &gid) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(126);
            execvp(argv[0], argv.data());
            _exit(127);
        }
        close(out[1]);
        fd_ = out[0];
        REQUIRE(pid_ > 0);
    }
    ~Child() {
        if (pid_ > 0) {
            kill(pid_, SIGTERM);
            waitpid(pid_, nullptr, 0);
        }
        if (fd_ >= 0) close(fd_);
    }
    // Reads output until `text` appears (true) or the output ends or the deadline passes (false).
    bool read_until(const std::string& text, std::chrono::milliseconds timeout = deadline) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (output_.find(text) == std::string::npos) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            pollfd p{fd_, POLLIN, 0};
            if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
            char buf[4096];
            const auto n = read(fd_, buf, sizeof buf);
            if (n <= 0) return false;
            output_.append(buf, static_cast<std::size_t>(n));
        }
        return true;
    }
    // Waits for the exit (the child's own deadline is the test's); returns the exit status.
    int finish() {
        read_until("\x01never\x01");
        int status = 0;
        waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
    }
    const std::string& output() const { return output_; }

private:
    pid_t pid_ = -1;
    int fd_ = -1;
    std::string output_;
};

std::string system_bus_config(const std::filesystem::path& dir) {
    const char* root = std::getenv("SHIPD_SOURCE_ROOT");
    REQUIRE(root != nullptr);
    // The default policy of Debian's system.conf, then shipd's file, as the real system bus includes it.
    return R"(<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=)" +
           (dir / "system_bus_socket").string() + R"(</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>)" +
           (std::filesystem::path(root) / "dbus" / "org.shipd.Hub1.conf").string() + R"(</include>
</busconfig>
)";
}

} // namespace

TEST_CASE("the system bus policy lets root act and others only look", "[daemon][dbus][policy]") {
    if (geteuid() != 0) {
        WARN("not root: cannot run clients as another user; policy test skipped");
        return;
    }
    TempDir dir;
    REQUIRE(chmod(dir.path.c_str(), 0755) == 0); // nobody must reach the socket
    const auto conf = dir.path / "system.conf";
    std::ofstream(conf) << system_bus_config(dir.path);
    PrivateBus bus(dir.path, conf);
    const std::string address = "--address=" + bus.address();

    TestLoop strand;
    FakeHub hub{strand};
    auto service = std::make_unique<ship::daemon::DbusService>(
        strand.loop(),
        ship::daemon::DbusServiceConfig{ship::daemon::BusKind::address, bus.address(), "1", {}}, hub,
        strand.stop_source().get_token());
    service->start(); // as root: owning the name is allowed
    strand.start();

    const auto busctl = [&](uid_t uid, gid_t gid, std::vector<std::string> args) {
        args.insert(args.begin(), {"busctl", address});
        Child child(uid, gid, std::move(args));
        const int status = child.finish();
        return std::make_pair(status, child.output());
    };
    const std::vector<std::string> get_ship_id = {"get-property", "org.shipd.Hub1", "/org/shipd/Hub1",
                                                  "org.shipd.Hub1", "ShipID"};
    const std::vector<std::string> list_peers = {"call", "org.shipd.Hub1", "/org/shipd/Hub1",
                                                 "org.shipd.Hub1", "ListPeers"};
    const std::vector<std::string> set_auto = {
        "set-property", "org.shipd.Hub1", "/org/shipd/Hub1", "org.shipd.Hub1", "AutoAccept", "b", "true"};

    SECTION("anyone reads and introspects") {
        const auto [status, out] = busctl(nobody, nogroup, get_ship_id);
        CHECK(status == 0);
        CHECK_THAT(out, Catch::Contains("shipd-test-1"));
        const auto [istatus, iout] =
            busctl(nobody, nogroup, {"introspect", "org.shipd.Hub1", "/org/shipd/Hub1"});
        CHECK(istatus == 0);
        CHECK_THAT(iout, Catch::Contains(".ListPeers"));
    }
    SECTION("anyone lists peers; only root acts and sets properties") {
        // Reading includes the read-only methods (shipctl status and peers work for every user).
        const auto [status, out] = busctl(nobody, nogroup, list_peers);
        CHECK(status == 0);
        // Actions reach shipd, which refuses them (no polkitd on this bus: the fallback rule).
        const auto [tstatus, tout] = busctl(nobody, nogroup,
                                            {"call", "org.shipd.Hub1", "/org/shipd/Hub1", "org.shipd.Hub1",
                                             "Trust", "s", "5a1c0de5a1c0de5a1c0de5a1c0de5a1c0de5a1c0"});
        CHECK(tstatus != 0);
        CHECK_THAT(tout,
                   Catch::Contains("denied", Catch::CaseSensitive::No) && Catch::Contains("org.shipd.trust"));
        const auto [sstatus, sout] = busctl(nobody, nogroup, set_auto);
        CHECK(sstatus != 0);
        CHECK_THAT(sout, Catch::Contains("denied", Catch::CaseSensitive::No));
        CHECK(busctl(0, 0, list_peers).first == 0);
        CHECK(busctl(0, 0, set_auto).first == 0);
    }
    SECTION("group shipd and the daemon's own user may call methods and set properties") {
        if (!shipd_account.unavailable().empty()) {
            WARN("no user shipd (" << shipd_account.unavailable() << "); its rules are untested here");
        } else {
            const passwd* user = getpwnam("shipd");
            const group* shipd_group = getgrnam("shipd");
            REQUIRE(user != nullptr);
            REQUIRE(shipd_group != nullptr);
            CHECK(busctl(nobody, shipd_group->gr_gid, list_peers).first == 0);
            CHECK(busctl(nobody, shipd_group->gr_gid, set_auto).first == 0);
            CHECK(busctl(user->pw_uid, user->pw_gid, list_peers).first == 0);
        }
    }
    SECTION("DataReceived reaches root and group shipd but not other users") {
        const auto monitor = [&](uid_t uid, gid_t gid) {
            return std::make_unique<Child>(uid, gid,
                                           std::vector<std::string>{"stdbuf", "-oL", "gdbus", "monitor",
                                                                    "--address", bus.address(), "--dest",
                                                                    "org.shipd.Hub1"});
        };
        const group* shipd_group = getgrnam("shipd");
        if (shipd_group == nullptr)
            WARN("no group shipd (" << shipd_account.unavailable() << "); only root and nobody are checked");
        auto as_root = monitor(0, 0);
        auto as_nobody = monitor(nobody, nogroup);
        auto as_member = shipd_group != nullptr ? monitor(nobody, shipd_group->gr_gid) : nullptr;
        // Until every monitor shows a signal everyone may see, their match rules may not be in place yet.
        const auto until = std::chrono::steady_clock::now() + deadline;
        bool ready = false;
        while (!ready && std::chrono::steady_clock::now() < until) {
            strand.run([&] { service->discovered_changed(); });
            ready = as_root->read_until("DiscoveredChanged", 200ms) &&
                    as_nobody->read_until("DiscoveredChanged", 200ms) &&
                    (!as_member || as_member->read_until("DiscoveredChanged", 200ms));
        }
        REQUIRE(ready);
        strand.run([&] {
            service->data_received("5a1c0de5a1c0de5a1c0de5a1c0de5a1c0de5a1c0", R"({"datagram":{}})");
            service->peer_connected("5a1c0de5a1c0de5a1c0de5a1c0de5a1c0de5a1c0");
        });
        // Order is kept per sender and receiver: PeerConnected arriving means DataReceived would have, too.
        REQUIRE(as_root->read_until("PeerConnected"));
        REQUIRE(as_nobody->read_until("PeerConnected"));
        CHECK_THAT(as_root->output(), Catch::Contains("DataReceived"));
        CHECK_THAT(as_nobody->output(), !Catch::Contains("DataReceived"));
        if (as_member) {
            REQUIRE(as_member->read_until("PeerConnected"));
            CHECK_THAT(as_member->output(), Catch::Contains("DataReceived"));
        }
    }

    strand.stop();
    service.reset();
}

// shipd.service runs the daemon as the system user shipd, so that user must be able to take the name; the
// contract's "only root" would force a network daemon to run as root. Ownership goes by user, not group.
TEST_CASE("root and the system user shipd may own the name, nobody else", "[daemon][dbus][policy]") {
    if (geteuid() != 0) {
        WARN("not root: cannot run clients as another user; policy test skipped");
        return;
    }
    if (!shipd_account.unavailable().empty()) {
        WARN("no user shipd (" << shipd_account.unavailable() << "); ownership test skipped");
        return;
    }
    TempDir dir;
    REQUIRE(chmod(dir.path.c_str(), 0755) == 0);
    const auto conf = dir.path / "system.conf";
    std::ofstream(conf) << system_bus_config(dir.path);
    PrivateBus bus(dir.path, conf);
    const passwd* user = getpwnam("shipd");
    const group* shipd_group = getgrnam("shipd");
    REQUIRE(user != nullptr);
    REQUIRE(shipd_group != nullptr);

    // The name is free; busctl holds it (reply 1: primary owner) until it exits, and the next one may take
    // it.
    const auto request_name = [&](uid_t uid, gid_t gid) {
        Child child(uid, gid,
                    {"busctl", "--address=" + bus.address(), "call", "org.freedesktop.DBus",
                     "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName", "su", "org.shipd.Hub1",
                     "0"});
        const int status = child.finish();
        return std::make_pair(status, child.output());
    };
    SECTION("user shipd") {
        const auto [status, out] = request_name(user->pw_uid, user->pw_gid);
        CHECK(status == 0);
        CHECK_THAT(out, Catch::Contains("u 1"));
    }
    SECTION("root") {
        const auto [status, out] = request_name(0, 0);
        CHECK(status == 0);
        CHECK_THAT(out, Catch::Contains("u 1"));
    }
    SECTION("not nobody, even as a member of group shipd") {
        for (const gid_t gid : {nogroup, shipd_group->gr_gid}) {
            const auto [status, out] = request_name(nobody, gid);
            CHECK(status != 0);
            CHECK_THAT(out, Catch::Contains("denied", Catch::CaseSensitive::No));
        }
    }
}
