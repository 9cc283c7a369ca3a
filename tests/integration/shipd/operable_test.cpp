// shipd as an admin and an app author meet it (issue 16): the listen address it is given, Connect that
// reports its outcome, SendData's guard rails, the peer objects' methods, and who may read and who may act —
// with the fallback rule and with a real polkitd. Real shipd processes, real buses, real sockets on
// loopback.
//
// The whole test runs in a private mount namespace (set up before main, on the one thread there is then),
// so that what it changes is seen by it and its children only and ends with it:
//  - /etc/resolv.conf names 127.0.0.1: resolving "nosuchhost.invalid" fails on loopback, no query leaves;
//  - /etc/passwd and /etc/group are copies with a group shipd (if the machine has none) and a user
//    shipd-member in it;
//  - polkit's action and rule directories are the test's own (shipd's policy, its rule, one site rule).
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <catch2/catch.hpp>
#include <rapidjson/document.h>

#include "../daemon/dbus_test_support.hpp"
#include "../shipctl/child.hpp"
#include "shipd_process.hpp"

extern char** environ;

using namespace std::chrono_literals;
using ship::test::Client;
using ship::test::PrivateBus;
using ship::test::ShipdProcess;
using ship::test::TempDir;

namespace {

constexpr const char* member_user = "shipd-member";

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

class TestNamespace {
public:
    TestNamespace() {
        if (geteuid() != 0) {
            unavailable_ = "not root";
            return;
        }
        char dir_template[] = "/tmp/shipd-operable-XXXXXX";
        if (mkdtemp(dir_template) == nullptr) {
            unavailable_ = "mkdtemp failed";
            return;
        }
        dir_ = dir_template;
        chmod(dir_.c_str(), 0755); // polkitd runs as its own user and reads the rules from here
        if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
            unavailable_ = std::string("private mount namespace: ") + std::strerror(errno);
            return;
        }
        const auto bind = [&](const std::filesystem::path& from, const char* onto) {
            if (mount(from.c_str(), onto, nullptr, MS_BIND, nullptr) != 0 && unavailable_.empty())
                unavailable_ = std::string("bind mount on ") + onto + ": " + std::strerror(errno);
        };
        std::ofstream(dir_ / "resolv.conf") << "nameserver 127.0.0.1\n";
        chmod((dir_ / "resolv.conf").c_str(), 0644);
        bind(dir_ / "resolv.conf", "/etc/resolv.conf");

        // A group shipd and a member of it, whatever the machine has.
        id_t id = 999;
        while (id >= 100 && (getpwuid(id) != nullptr || getgrgid(id) != nullptr))
            --id;
        const group* shipd = getgrnam("shipd");
        const auto gid = shipd ? shipd->gr_gid : id;
        const auto uid = id == gid ? id - 1 : id;
        std::string groups = read_file("/etc/group"), passwd = read_file("/etc/passwd");
        if (!shipd) {
            groups += "shipd:x:" + std::to_string(gid) + ":" + member_user + "\n";
        } else {
            std::string out, line;
            std::istringstream lines(groups);
            while (std::getline(lines, line)) {
                if (line.rfind("shipd:", 0) == 0)
                    line += (line.back() == ':' ? "" : ",") + std::string(member_user);
                out += line + "\n";
            }
            groups = out;
        }
        passwd += std::string(member_user) + ":x:" + std::to_string(uid) + ":" + std::to_string(gid) +
                  "::/nonexistent:/usr/sbin/nologin\n";
        std::ofstream(dir_ / "group") << groups;
        std::ofstream(dir_ / "passwd") << passwd;
        chmod((dir_ / "group").c_str(), 0644);
        chmod((dir_ / "passwd").c_str(), 0644);
        bind(dir_ / "passwd", "/etc/passwd");
        bind(dir_ / "group", "/etc/group");
        member_uid_ = uid;
        shipd_gid_ = gid;

        // polkit: our actions and rules only.
        const char* root = std::getenv("SHIPD_SOURCE_ROOT");
        if (root == nullptr || !std::filesystem::exists("/usr/lib/polkit-1/polkitd") ||
            !std::filesystem::is_directory("/usr/share/polkit-1/actions")) {
            polkit_unavailable_ = "no polkitd installed (or SHIPD_SOURCE_ROOT unset)";
            return;
        }
        for (const char* d : {"actions", "rules", "etc-rules"}) {
            std::filesystem::create_directory(dir_ / d);
            chmod((dir_ / d).c_str(), 0755);
        }
        const std::filesystem::path source(root);
        std::filesystem::copy_file(source / "dbus" / "org.shipd.policy",
                                   dir_ / "actions" / "org.shipd.policy");
        std::filesystem::copy_file(source / "dbus" / "60-org.shipd.rules",
                                   dir_ / "rules" / "60-org.shipd.rules");
        // The site's rule: a data-only app (here: user nobody) may send data, and nothing else.
        std::ofstream(dir_ / "etc-rules" / "10-data-only-app.rules")
            << "polkit.addRule(function(action, subject) {\n"
               "    if (action.id == \"org.shipd.send-data\" && subject.user == \"nobody\")\n"
               "        return polkit.Result.YES;\n"
               "});\n";
        for (const auto& f : std::filesystem::recursive_directory_iterator(dir_))
            if (f.is_regular_file()) chmod(f.path().c_str(), 0644);
        bind(dir_ / "actions", "/usr/share/polkit-1/actions");
        bind(dir_ / "rules", "/usr/share/polkit-1/rules.d");
        if (std::filesystem::is_directory("/etc/polkit-1/rules.d"))
            bind(dir_ / "etc-rules", "/etc/polkit-1/rules.d");
    }
    ~TestNamespace() {
        std::error_code ignored;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
    }
    const std::string& unavailable() const { return unavailable_; }
    const std::string& polkit_unavailable() const {
        return unavailable_.empty() ? polkit_unavailable_ : unavailable_;
    }
    uid_t member_uid() const { return member_uid_; }
    gid_t shipd_gid() const { return shipd_gid_; }

private:
    std::string unavailable_, polkit_unavailable_;
    std::filesystem::path dir_;
    uid_t member_uid_ = 0;
    gid_t shipd_gid_ = 0;
};
const TestNamespace test_namespace;

std::chrono::milliseconds scaled(std::chrono::milliseconds bound) {
    const char* scale = std::getenv("SHIPD_TEST_TIME_SCALE");
    return bound * (scale ? std::max(1, std::atoi(scale)) : 1);
}

// The system bus configuration of Debian (its default policy) with shipd's file included, on a socket in
// `dir`: what a non-root client meets on a real system.
std::filesystem::path system_bus_config(const std::filesystem::path& dir) {
    const char* root = std::getenv("SHIPD_SOURCE_ROOT");
    REQUIRE(root != nullptr);
    const auto path = dir / "system.conf";
    std::ofstream(path) << R"(<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=)" << (dir / "system_bus_socket").string()
                        << R"(</listen>
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
  <policy user="polkitd">
    <allow own="org.freedesktop.PolicyKit1"/>
  </policy>
  <policy context="default">
    <allow send_destination="org.freedesktop.PolicyKit1"/>
  </policy>
  <include>)" << (std::filesystem::path(root) / "dbus" / "org.shipd.Hub1.conf").string()
                        << R"(</include>
</busconfig>
)";
    return path;
}

struct Daemon {
    Daemon(const std::filesystem::path& dir, const std::string& name, std::vector<std::string> extra = {},
           const std::filesystem::path& bus_config = {})
        : home(dir / name)
        , bus((std::filesystem::create_directories(home), chmod(home.c_str(), 0755), home), bus_config) {
        start(std::move(extra));
    }

    void start(std::vector<std::string> extra = {}) {
        client.reset();
        std::vector<std::string> args{"--state-dir", (home / "state").string(),
                                      "--no-mdns",   "--bus-address",
                                      bus.address(), "--log-level",
                                      "debug"};
        if (std::find(extra.begin(), extra.end(), "--port") == extra.end())
            extra.insert(extra.end(), {"--port", "0"});
        args.insert(args.end(), extra.begin(), extra.end());
        process = std::make_unique<ShipdProcess>(args, home / "shipd.log");
        INFO(process->log());
        REQUIRE(process->wait_notify("READY=1", scaled(10s)));
        client = std::make_unique<Client>(bus.address());
        ski = client->hub().LocalSKI();
        port = client->hub().Port();
    }

    bool connected_to(const std::string& peer) {
        for (const auto& p : client->hub().ListPeers())
            if (p.get<0>() == peer) return p.get<4>();
        return false;
    }
    int count(const std::string& signal, const std::string& ski_arg) const {
        int n = 0;
        for (const auto& s : client->signals())
            if (s.name == signal && !s.args.empty() && s.args[0] == ski_arg) ++n;
        return n;
    }
    // busctl on this bus as another user (setpriv), one shot.
    ship::test::RunResult busctl_as(uid_t uid, gid_t gid, std::vector<std::string> groups,
                                    const std::vector<std::string>& args) const {
        std::vector<std::string> argv{"setpriv", "--reuid=" + std::to_string(uid),
                                      "--regid=" + std::to_string(gid)};
        if (groups.empty()) {
            argv.emplace_back("--clear-groups");
        } else {
            std::string list;
            for (const auto& g : groups)
                list += (list.empty() ? "" : ",") + g;
            argv.push_back("--groups=" + list);
        }
        argv.insert(argv.end(), {"busctl", "--address=" + bus.address()});
        argv.insert(argv.end(), args.begin(), args.end());
        return ship::test::run(argv, {}, {}, scaled(10s));
    }

    std::filesystem::path home;
    PrivateBus bus;
    std::unique_ptr<ShipdProcess> process;
    std::unique_ptr<Client> client;
    std::string ski;
    std::uint16_t port = 0;
};

std::string error_of(const std::function<void()>& call) {
    try {
        call();
    } catch (const sdbus::Error& e) {
        return e.getName() + ": " + e.getMessage();
    }
    return "no error";
}

void pair_and_connect(Daemon& a, Daemon& b) {
    a.client->hub().Trust(b.ski);
    b.client->hub().Trust(a.ski);
    // Connect replies once the connection is in data exchange: no waiting for a signal needed.
    a.client->hub().Connect(b.ski, "127.0.0.1", b.port);
    CHECK(a.connected_to(b.ski));
    REQUIRE(b.client->wait_for([&] { return b.count("PeerConnected", a.ski) == 1; }, scaled(10s)));
}

// LISTEN sockets on `port` as /proc/net/tcp{,6} show them: "0100007F" (127.0.0.1),
// "00000000000000000000000001000000" (::1), ...
std::vector<std::string> listening(std::uint16_t port) {
    std::vector<std::string> out;
    char hex_port[8];
    std::snprintf(hex_port, sizeof hex_port, "%04X", port);
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::istringstream lines(read_file(table));
        std::string line;
        std::getline(lines, line); // header
        while (std::getline(lines, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state;
            fields >> slot >> local >> remote >> state;
            const auto colon = local.find(':');
            if (state == "0A" && local.substr(colon + 1) == hex_port) out.push_back(local.substr(0, colon));
        }
    }
    return out;
}

bool host_has_address(const std::string& text) {
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return false;
    bool found = false;
    for (auto* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
        char buf[64];
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
        found |= text == buf;
    }
    freeifaddrs(list);
    return found;
}

// The stored address of a peer, "host:port" ("" if none): trust.json, then trust.journal's lines on top, as
// the trust store loads them.
std::string stored_address(const Daemon& d, const std::string& ski) {
    std::string found;
    const std::function<void(const rapidjson::Value&)> walk = [&](const rapidjson::Value& v) {
        if (v.IsObject()) {
            if (v.HasMember("ski") && v["ski"].IsString() && v["ski"].GetString() == ski) {
                if (v.HasMember("op") && v["op"].IsString() && std::string(v["op"].GetString()) == "remove")
                    found.clear();
                if (v.HasMember("address") && v["address"].IsObject())
                    found = std::string(v["address"]["host"].GetString()) + ":" +
                            std::to_string(v["address"]["port"].GetUint());
            }
            for (const auto& m : v.GetObject())
                walk(m.value);
        } else if (v.IsArray()) {
            for (const auto& e : v.GetArray())
                walk(e);
        }
    };
    rapidjson::Document doc;
    doc.Parse(read_file(d.home / "state" / "trust.json").c_str());
    if (!doc.HasParseError()) walk(doc);
    std::istringstream journal(read_file(d.home / "state" / "trust.journal"));
    std::string line;
    while (std::getline(journal, line)) {
        rapidjson::Document entry;
        entry.Parse(line.c_str());
        if (!entry.HasParseError()) walk(entry);
    }
    return found;
}

const std::string spine_read =
    R"({"datagram":{"header":{"specificationVersion":"1.2.0","addressSource":{"device":"d:_i:shipd_A","entity":[0],"feature":0},"addressDestination":{"device":"d:_i:shipd_B","entity":[0],"feature":0},"msgCounter":1,"cmdClassifier":"read"},"payload":{"cmd":[{"nodeManagementDetailedDiscoveryData":{}}]}}})";

} // namespace

TEST_CASE("an IPv4 listen address is bound exactly, several share one port, a foreign one exits 2",
          "[shipd][operable]") {
    TempDir dir;
    SECTION("127.0.0.1 only") {
        Daemon a(dir.path, "a", {"--listen-address", "127.0.0.1"});
        CHECK(a.client->hub().ListenAddresses() ==
              std::vector<std::string>{"127.0.0.1:" + std::to_string(a.port)});
        CHECK(listening(a.port) == std::vector<std::string>{"0100007F"});
        CHECK_THAT(a.process->log(),
                   Catch::Contains("listening for SHIP on 127.0.0.1:" + std::to_string(a.port)));
    }
    SECTION("127.0.0.1 and ::1 from the config file, one port") {
        std::ofstream(dir.path / "two.conf") << R"({"listen_address": ["127.0.0.1", "::1"]})";
        Daemon a(dir.path, "a", {"--config", (dir.path / "two.conf").string()});
        const auto p = std::to_string(a.port);
        CHECK(a.client->hub().ListenAddresses() == std::vector<std::string>{"127.0.0.1:" + p, "[::1]:" + p});
        CHECK(listening(a.port) == std::vector<std::string>{"0100007F", "00000000000000000000000001000000"});
    }
    SECTION("an address this host does not have: exit 2, the message names it") {
        const std::string foreign = "198.51.100.77"; // TEST-NET-2
        if (host_has_address(foreign)) {
            WARN("this host has " << foreign << "; skipped");
            return;
        }
        std::filesystem::create_directories(dir.path / "x");
        ShipdProcess p(
            {"--state-dir", (dir.path / "x").string(), "--no-mdns", "--session", "--listen-address", foreign},
            dir.path / "x.log");
        CHECK(p.wait_exit(scaled(5s)) == 2);
        CHECK_THAT(p.log(), Catch::Contains(foreign) && Catch::Contains("--listen-address"));
        // The same from the config file: the message names the file and line.
        std::ofstream(dir.path / "bad.conf") << "{\n  \"listen_address\": \"" << foreign << "\"\n}\n";
        ShipdProcess q({"--config", (dir.path / "bad.conf").string(), "--state-dir",
                        (dir.path / "x").string(), "--no-mdns", "--session"},
                       dir.path / "y.log");
        CHECK(q.wait_exit(scaled(5s)) == 2);
        CHECK_THAT(q.log(), Catch::Contains("bad.conf:2:") && Catch::Contains(foreign));
    }
}

TEST_CASE("Connect reports its outcome and never replaces a working address", "[shipd][operable]") {
    if (!test_namespace.unavailable().empty()) {
        WARN("no private mount namespace (" << test_namespace.unavailable()
                                            << "): the unresolvable host would query the real DNS; skipped");
        return;
    }
    TempDir dir;
    const std::uint16_t b_port = ship::test::free_port();
    Daemon a(dir.path, "a"), b(dir.path, "b", {"--port", std::to_string(b_port)});
    pair_and_connect(a, b);
    REQUIRE(a.client->wait_for(
        [&] { return stored_address(a, b.ski) == "127.0.0.1:" + std::to_string(b_port); }));
    // Connected already: success at once.
    a.client->hub().Connect(b.ski, "127.0.0.1", b_port);

    b.process->signal(SIGTERM);
    REQUIRE(b.process->wait_exit(scaled(5s)) == 0);
    REQUIRE(a.client->wait_for([&] { return a.count("PeerDisconnected", b.ski) == 1; }));
    // Who closed, and how: b announced a SHIP close.
    CHECK_THAT(a.client->find("PeerDisconnected")->args.at(1),
               Catch::StartsWith("closed by the peer: SHIP connectionClose"));
    a.client->clear();

    // A port where nothing listens: refused.
    const std::uint16_t refused = ship::test::free_port();
    auto t0 = std::chrono::steady_clock::now();
    const auto refused_error = error_of([&] { a.client->hub().Connect(b.ski, "127.0.0.1", refused); });
    CHECK_THAT(refused_error, Catch::StartsWith("org.shipd.Hub1.Error.ConnectFailed") &&
                                  Catch::Contains("127.0.0.1:" + std::to_string(refused)));
    CHECK(std::chrono::steady_clock::now() - t0 < scaled(5s));

    // A host that does not resolve.
    t0 = std::chrono::steady_clock::now();
    const auto unresolvable = error_of([&] { a.client->hub().Connect(b.ski, "nosuchhost.invalid", 4711); });
    CHECK_THAT(unresolvable, Catch::StartsWith("org.shipd.Hub1.Error.ConnectFailed") &&
                                 Catch::Contains("nosuchhost.invalid"));
    CHECK(std::chrono::steady_clock::now() - t0 < scaled(5s));

    // Every failure is on the bus: the peer's State, Error, LastError(Time), and PeerStateChanged.
    auto& peer = a.client->peer(b.ski);
    CHECK(peer.State() == "error");
    CHECK_THAT(peer.Error(), Catch::Contains("nosuchhost.invalid"));
    CHECK_THAT(peer.LastError(), Catch::Contains("nosuchhost.invalid"));
    CHECK(peer.LastErrorTime() > 0);
    bool saw_error_state = false;
    a.client->drain();
    for (const auto& s : a.client->signals())
        saw_error_state |= s.name == "PeerStateChanged" && s.args.at(1) == "error";
    CHECK(saw_error_state);

    // Neither failed address replaced the one that works.
    CHECK(stored_address(a, b.ski) == "127.0.0.1:" + std::to_string(b_port));
    CHECK(peer.Host() == "127.0.0.1");
    CHECK(peer.Port() == b_port);

    // The peer object's Connect() dials that known address and replies once connected.
    b.start({"--port", std::to_string(b_port)});
    a.client->peer(b.ski).Connect();
    CHECK(a.connected_to(b.ski));
}

TEST_CASE("a Connect that reaches nothing in time answers Timeout", "[shipd][operable]") {
    TempDir dir;
    Daemon a(dir.path, "a");
    const std::string stranger = "0123456789abcdef0123456789abcdef01234567";
    a.client->hub().Trust(stranger);
    // Accepts TCP, never answers TLS: the dial's own 10 s bound ends it.
    const int tarpit = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(tarpit, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(listen(tarpit, 4) == 0);
    socklen_t len = sizeof(addr);
    getsockname(tarpit, reinterpret_cast<sockaddr*>(&addr), &len);
    std::string outcome;
    a.client->connect_async(stranger, "127.0.0.1", ntohs(addr.sin_port),
                            [&](const std::string& e) { outcome = e.empty() ? "ok" : e; });
    REQUIRE(a.client->wait_for([&] { return !outcome.empty(); }, scaled(22s)));
    close(tarpit);
    CHECK_THAT(outcome, Catch::StartsWith("org.shipd.Hub1.Error.Timeout"));
    CHECK(stored_address(a, stranger).empty());
}

TEST_CASE("SendData refuses what a peer would drop the connection for, and keeps the connection",
          "[shipd][operable]") {
    TempDir dir;
    Daemon a(dir.path, "a"), b(dir.path, "b");
    pair_and_connect(a, b);
    // Counters are SPINE data only: the handshake sent and received several SHIP messages.
    CHECK(a.client->peer(b.ski).MessagesOut() == 0);
    CHECK(a.client->peer(b.ski).MessagesIn() == 0);

    const std::string big = R"({"datagram":{"header":{"msgCounter":2},"payload":{"cmd":[{"x":")" +
                            std::string(200'000, 'a') + R"("}]}}})";
    const auto too_big = error_of([&] { a.client->hub().SendData(b.ski, big); });
    CHECK_THAT(too_big, Catch::StartsWith("org.shipd.Hub1.Error.InvalidArgument") &&
                            Catch::Contains("2000") && Catch::Contains("102400"));
    CHECK_THAT(error_of([&] { a.client->hub().SendData(b.ski, R"({"hello":1})"); }),
               Catch::StartsWith("org.shipd.Hub1.Error.InvalidJSON") && Catch::Contains("datagram"));
    CHECK_THAT(error_of([&] { a.client->hub().SendData(b.ski, R"({"datagram":{"header":{}}})"); }),
               Catch::StartsWith("org.shipd.Hub1.Error.InvalidJSON") && Catch::Contains("payload"));

    // Nothing went out: still connected, and the next message arrives.
    a.client->hub().SendData(b.ski, spine_read);
    REQUIRE(b.client->wait_for([&] { return b.client->find("DataReceived").has_value(); }));
    CHECK(b.client->find("DataReceived")->args.at(1) == spine_read);
    CHECK(a.connected_to(b.ski));
    CHECK(a.count("PeerDisconnected", b.ski) == 0);
    CHECK(a.client->peer(b.ski).MessagesOut() == 1);
    REQUIRE(b.client->wait_for([&] { return b.client->peer(a.ski).MessagesIn() == 1; }));
    CHECK(b.client->peer(a.ski).BytesIn() > spine_read.size() / 2);
}

TEST_CASE("the peer objects' methods act on their SKI", "[shipd][operable]") {
    TempDir dir;
    Daemon a(dir.path, "a"), b(dir.path, "b");
    pair_and_connect(a, b);
    auto& peer = a.client->peer(b.ski);

    peer.SendData(spine_read);
    REQUIRE(b.client->wait_for([&] { return b.client->find("DataReceived").has_value(); }));

    peer.Disconnect("maintenance");
    REQUIRE(a.client->wait_for([&] { return a.count("PeerDisconnected", b.ski) == 1; }));
    CHECK(a.client->find("PeerDisconnected")->args.at(1) == "closed by us: maintenance");
    REQUIRE(b.client->wait_for([&] { return b.count("PeerDisconnected", a.ski) == 1; }));
    CHECK_THAT(b.client->find("PeerDisconnected")->args.at(1),
               Catch::StartsWith("closed by the peer: SHIP connectionClose, reason unspecific"));

    peer.Connect(); // known address; replies once connected (or the redial got there first)
    CHECK(a.connected_to(b.ski));

    peer.Untrust();
    REQUIRE(a.client->wait_for([&] { return a.count("PeerDisconnected", b.ski) == 2; }));
    // Untrusted and not connected: a forgets b, and its object goes.
    CHECK(a.client->hub().ListPeers().empty());
    // b still trusts a: Trust() there is a success that changes nothing, CancelPairing untrusts (and the
    // object goes while its own method answers).
    b.client->peer(a.ski).Trust();
    b.client->peer(a.ski).CancelPairing();
    CHECK(b.client->hub().ListPeers().empty());
}

TEST_CASE("without polkit, a non-member reads everything and acts on nothing; a member acts",
          "[shipd][operable][access]") {
    if (!test_namespace.unavailable().empty()) {
        WARN("no private mount namespace (" << test_namespace.unavailable() << "); skipped");
        return;
    }
    TempDir dir;
    chmod(dir.path.c_str(), 0755);
    Daemon a(dir.path, "a", {}, system_bus_config(dir.path));
    const std::string stranger = "0123456789abcdef0123456789abcdef01234567";
    a.client->hub().Trust(stranger);
    const std::vector<std::string> hub{"org.shipd.Hub1", "/org/shipd/Hub1", "org.shipd.Hub1"};
    const auto with = [](std::vector<std::string> head, std::initializer_list<std::string> tail) {
        head.insert(head.begin(), "call");
        head.insert(head.end(), tail);
        return head;
    };
    const uid_t nobody = 65534;
    // Reading: everyone.
    auto r = a.busctl_as(nobody, nobody, {}, with(hub, {"ListPeers"}));
    CHECK(r.status == 0);
    CHECK_THAT(r.out, Catch::Contains(stranger));
    r = a.busctl_as(nobody, nobody, {},
                    {"call", "org.shipd.Hub1", "/org/shipd/Hub1", "org.freedesktop.DBus.ObjectManager",
                     "GetManagedObjects"});
    CHECK(r.status == 0);
    r = a.busctl_as(
        nobody, nobody, {},
        {"get-property", "org.shipd.Hub1", "/org/shipd/Hub1", "org.shipd.Hub1", "ListenAddresses"});
    CHECK(r.status == 0);
    // Acting: not a non-member.
    for (const auto& call :
         {with(hub, {"Untrust", "s", stranger}), with(hub, {"SendData", "ss", stranger, spine_read}),
          with(hub, {"Connect", "ssq", stranger, "127.0.0.1", "1"}),
          std::vector<std::string>{"set-property", "org.shipd.Hub1", "/org/shipd/Hub1", "org.shipd.Hub1",
                                   "AutoAccept", "b", "true"},
          std::vector<std::string>{"call", "org.shipd.Hub1", "/org/shipd/Hub1/peer/" + stranger,
                                   "org.shipd.Hub1.Peer", "Untrust"}}) {
        INFO(call[4]);
        r = a.busctl_as(nobody, nobody, {}, call);
        CHECK(r.status != 0);
        CHECK_THAT(r.err, Catch::Contains("Access denied") && Catch::Contains("org.shipd."));
    }
    CHECK(a.client->hub().AutoAccept() == false);
    // A member of group shipd may (the fallback rule).
    r = a.busctl_as(test_namespace.member_uid(), test_namespace.shipd_gid(),
                    {std::to_string(test_namespace.shipd_gid())},
                    with(hub, {"SendData", "ss", stranger, spine_read}));
    CHECK_THAT(r.err, Catch::Contains("not connected"));
    CHECK_THAT(a.process->log(), Catch::Contains("polkit cannot authorize"));
}

namespace {

// polkitd on the test's bus, by PID: it reads the actions and rules this namespace shows it.
class Polkitd {
public:
    explicit Polkitd(const std::string& bus_address, Client& observer) {
        std::vector<std::string> env_text;
        for (char** e = environ; *e; ++e)
            if (std::strncmp(*e, "DBUS_SYSTEM_BUS_ADDRESS=", 24) != 0) env_text.emplace_back(*e);
        env_text.push_back("DBUS_SYSTEM_BUS_ADDRESS=" + bus_address);
        std::vector<char*> env;
        for (auto& e : env_text)
            env.push_back(e.data());
        env.push_back(nullptr);
        std::string binary = "/usr/lib/polkit-1/polkitd", flag = "--no-debug";
        char* argv[] = {binary.data(), flag.data(), nullptr};
        REQUIRE(posix_spawn(&pid_, binary.c_str(), nullptr, nullptr, argv, env.data()) == 0);
        auto dbus =
            sdbus::createProxy(observer.connection(), "org.freedesktop.DBus", "/org/freedesktop/DBus");
        const auto until = std::chrono::steady_clock::now() + scaled(10s);
        bool owned = false;
        while (!owned && std::chrono::steady_clock::now() < until) {
            dbus->callMethod("NameHasOwner")
                .onInterface("org.freedesktop.DBus")
                .withArguments(std::string("org.freedesktop.PolicyKit1"))
                .storeResultsTo(owned);
            if (!owned) observer.wait_for([] { return false; }, 50ms);
        }
        REQUIRE(owned);
    }
    ~Polkitd() {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
    }

private:
    pid_t pid_ = -1;
};

} // namespace

TEST_CASE("a polkit rule that grants only SendData to a user: that user sends, and does nothing else",
          "[shipd][operable][access][polkit]") {
    if (!test_namespace.polkit_unavailable().empty()) {
        WARN("polkit test skipped: " << test_namespace.polkit_unavailable());
        return;
    }
    TempDir dir;
    chmod(dir.path.c_str(), 0755);
    const auto config = system_bus_config(dir.path);
    // polkitd first: shipd's first question then reaches it.
    std::filesystem::create_directories(dir.path / "a");
    PrivateBus bus(dir.path / "a", config);
    Client observer(bus.address());
    Polkitd polkitd(bus.address(), observer);

    std::filesystem::create_directories(dir.path / "state");
    ShipdProcess shipd({"--state-dir", (dir.path / "state").string(), "--no-mdns", "--port", "0",
                        "--bus-address", bus.address()},
                       dir.path / "shipd.log");
    REQUIRE(shipd.wait_notify("READY=1", scaled(10s)));
    Client client(bus.address());
    const std::string stranger = "0123456789abcdef0123456789abcdef01234567";
    client.hub().Trust(stranger); // root: polkit always allows root

    const auto busctl = [&](uid_t uid, gid_t gid, std::vector<std::string> groups,
                            std::vector<std::string> args) {
        std::vector<std::string> argv{"setpriv", "--reuid=" + std::to_string(uid),
                                      "--regid=" + std::to_string(gid)};
        if (groups.empty()) {
            argv.emplace_back("--clear-groups");
        } else {
            argv.push_back("--groups=" + groups.front());
        }
        argv.insert(argv.end(), {"busctl", "--address=" + bus.address(), "call", "org.shipd.Hub1",
                                 "/org/shipd/Hub1", "org.shipd.Hub1"});
        argv.insert(argv.end(), args.begin(), args.end());
        return ship::test::run(argv, {}, {}, scaled(10s));
    };
    const uid_t nobody = 65534;
    // SendData passes polkit (the hub then answers: the peer is not connected).
    auto r = busctl(nobody, nobody, {}, {"SendData", "ss", stranger, spine_read});
    INFO(shipd.log());
    CHECK_THAT(r.err, Catch::Contains("is not connected"));
    // Anything else does not.
    for (const auto& call :
         std::vector<std::vector<std::string>>{{"Untrust", "s", stranger},
                                               {"Connect", "ssq", stranger, "127.0.0.1", "1"},
                                               {"Disconnect", "ss", stranger, "x"}}) {
        INFO(call.front());
        r = busctl(nobody, nobody, {}, call);
        CHECK(r.status != 0);
        CHECK_THAT(r.err, Catch::Contains("not allowed") && Catch::Contains("polkit"));
    }
    CHECK(client.peer(stranger).Trusted());
    // The shipped rule: a member of group shipd may act.
    r = busctl(test_namespace.member_uid(), test_namespace.shipd_gid(),
               {std::to_string(test_namespace.shipd_gid())}, {"Untrust", "s", stranger});
    CHECK(r.status == 0);
    CHECK(client.hub().ListPeers().empty()); // untrusted, never connected: forgotten
    // polkit answered every question: no fallback was needed.
    CHECK_THAT(shipd.log(), !Catch::Contains("polkit cannot authorize"));
    shipd.signal(SIGTERM);
    CHECK(shipd.wait_exit(scaled(5s)) == 0);
}
