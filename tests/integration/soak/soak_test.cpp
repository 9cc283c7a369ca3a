// The chaos soak: one real shipd on a private bus and 50+ SHIP peers (hub::Hub on its own strand in this
// process, plus a few soak_peer child processes that can be SIGKILLed), driven by a seeded random schedule
// of connects, disconnects, simultaneous double dials, Untrust/Trust, peer kill -9 and shipd restarts, while
// an invariant checker reads shipd's signal stream. SHIPD_SOAK_SEED replays a schedule, SHIPD_SOAK_SECONDS
// sets the length (README.md).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "../daemon/dbus_test_support.hpp"
#include "../hub/hub_harness.hpp"
#include "../shipd/shipd_process.hpp"
#include "invariant_checker.hpp"
#include "peer_process.hpp"
#include "process_probe.hpp"

namespace ship::soak {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
// ASan keeps up to 256 MiB of freed memory in quarantine and TSan keeps shadow for it: RSS does not fall
// back when memory is freed, so only a gross leak can be told from the sanitizer's own growth there.
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

std::uint64_t env_number(const char* name, std::uint64_t fallback) {
    const char* text = std::getenv(name);
    return text && *text ? std::stoull(text) : fallback;
}

int time_scale() {
    return static_cast<int>(std::max<std::uint64_t>(1, env_number("SHIPD_TEST_TIME_SCALE", 1)));
}

milliseconds scaled(milliseconds bound) {
    return bound * time_scale();
}

std::string short_ski(const std::string& ski) {
    return ski.substr(0, 8);
}

// One SHIP peer of the soak and what the schedule has done to it.
struct SoakPeer {
    std::string ski;
    std::uint16_t port = 0;
    std::unique_ptr<hub::it::Node> node;  // in-process peer, or
    std::unique_ptr<PeerProcess> process; // child process peer (the kill -9 ones)
    bool trusted = true;                  // by shipd
    bool alive = true;
    std::optional<Clock::time_point> missing_since; // expected connected but is not, since
    bool late_reported = false;
    std::optional<Clock::time_point> revive_at;

    bool expected_connected() const { return trusted && alive; }
};

class Soak {
public:
    Soak(std::uint64_t seed, milliseconds duration)
        : seed_(seed)
        , duration_(duration)
        , random_(seed)
        , bus_(dir_.path)
        , shipd_port_(test::free_port())
        , come_back_(30s + 5s * time_scale()) {
        write_config();
        // Subscribed before shipd first starts, and kept across its restarts: no signal can be missed.
        client_ = std::make_unique<test::Client>(bus_.address());
        bus_proxy_ =
            sdbus::createProxy(client_->connection(), "org.freedesktop.DBus", "/org/freedesktop/DBus");
        bus_proxy_->uponSignal("NameOwnerChanged")
            .onInterface("org.freedesktop.DBus")
            .call(
                [this](const std::string& name, const std::string& old_owner, const std::string& new_owner) {
                    if (name == "org.shipd.Hub1")
                        client_->record(
                            {"/org/freedesktop/DBus", "NameOwnerChanged", {name, old_owner, new_owner}});
                });
        bus_proxy_->finishRegistration();
    }

    ~Soak() { stop_peers(); }

    void run() {
        start_shipd();
        // Right after READY a descriptor may still be on its way out (sd_notify's socket): the idle
        // baseline is the smallest of a few readings.
        idle_ = figures("idle baseline");
        for (int i = 0; i < 6; ++i) {
            pump(50ms);
            const auto f = figures("idle baseline");
            if (f.fds < idle_.fds) idle_ = f;
        }
        make_peers();
        checker_ = std::make_unique<InvariantChecker>(peer_skis());
        for (auto& p : peers_)
            introduce(p);
        settle("first connect of every peer");
        warm_ = figures("warm baseline");

        const auto start = Clock::now();
        const auto end = start + duration_;
        last_restart_ = start;
        while (Clock::now() < end) {
            // No restart late in the run: the drift figures need load after the last warm baseline.
            const bool restart_allowed =
                Clock::now() < start + duration_ * 6 / 10 && Clock::now() - last_restart_ > 5s;
            // Every run restarts shipd at least once, half-way at the latest.
            if (counts_["restart"] == 0 && Clock::now() >= start + duration_ / 2)
                restart();
            else
                step(restart_allowed);
            pump(milliseconds(uniform(30, 150)));
            revive_due();
            watch_come_back();
        }
        finish();
    }

    void report_and_check() {
        std::string by_kind;
        std::size_t events = 0;
        for (const auto& [kind, n] : counts_) {
            by_kind += (by_kind.empty() ? "" : " ") + kind + "=" + std::to_string(n);
            events += n;
        }
        std::string signals;
        for (const auto& [name, n] : checker_->signal_counts())
            if (name.starts_with("Peer") || name == "NameOwnerChanged")
                signals += (signals.empty() ? "" : " ") + name + "=" + std::to_string(n);
        for (const auto& p : peers_)
            if (p.node)
                for (const auto& v : p.node->log().violations())
                    checker_->violation("peer " + short_ski(p.ski) + " hub contract: " + v);
        const long fd_drift = static_cast<long>(final_.fds) - static_cast<long>(idle_.fds);
        const long rss_drift = static_cast<long>(final_.rss_kib) - static_cast<long>(warm_.rss_kib);
        std::printf(
            "soak: seed=%llu seconds=%lld peers=%zu events=%zu [%s] signals=%zu [%s] "
            "settles=%zu connections=%zu dbus-errors=%zu violations=%zu fd-drift=%ld (idle %zu, loaded %zu, "
            "after %zu) rss-drift=%+ldKiB (warm %zu KiB, after %zu KiB)\n",
            static_cast<unsigned long long>(seed_),
            static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(duration_).count()),
            peers_.size(), events, by_kind.c_str(), checker_->signals_total(), signals.c_str(), settles_,
            checker_->connects_total(), dbus_errors_, checker_->violations().size(), fd_drift, idle_.fds,
            loaded_.fds, final_.fds, rss_drift, warm_.rss_kib, final_.rss_kib);
        for (const auto& v : checker_->violations())
            std::printf("soak: violation: %s\n", v.c_str());
        std::fflush(stdout);

        INFO("replay with SHIPD_SOAK_SEED=" << seed_ << "\n" << hub::it::to_string(checker_->violations()));
        CHECK(checker_->violations().empty());
        // Every soak peer reached data exchange at least once, and churn made it do so again.
        CHECK(checker_->connects_total() > peers_.size());
        CHECK(counts_["double-dial"] > 0);
        // Descriptors: exactly back where the idle daemon was once every peer is gone and forgotten.
        CHECK(fd_drift == 0);
        // Memory: freed connections need not go back to the kernel (malloc keeps its arenas), so the bound
        // is against the warm daemon that held every connection, not the freshly started one.
        const std::size_t tolerance_kib =
            sanitized ? 256 * 1024 : std::max<std::size_t>(8 * 1024, warm_.rss_kib / 4);
        CHECK(final_.rss_kib <= warm_.rss_kib + tolerance_kib);
    }

private:
    // --------------------------------------------------------------------------------- set-up

    void write_config() {
        // 50+ peers at once, each possibly with a second (double) connection in its handshake.
        std::ofstream(dir_.path / "shipd.conf") << R"({"max_connections": 160, "max_handshakes": 128})";
        std::filesystem::create_directories(dir_.path / "state");
    }

    void start_shipd() {
        shipd_ = std::make_unique<test::ShipdProcess>(
            std::vector<std::string>{"--config", (dir_.path / "shipd.conf").string(), "--state-dir",
                                     (dir_.path / "state").string(), "--port", std::to_string(shipd_port_),
                                     "--no-mdns", "--bus-address", bus_.address(), "--ship-id", "shipd-soak",
                                     "--log-level", "info"},
            dir_.path / "shipd.log");
        if (!shipd_->wait_notify("READY=1", scaled(10s))) FAIL("shipd did not start:\n" << shipd_->log());
        if (shipd_ski_.empty()) shipd_ski_ = client_->hub().LocalSKI();
    }

    void make_peers() {
        const std::size_t in_process = env_number("SHIPD_SOAK_PEERS", 48);
        const std::size_t children = env_number("SHIPD_SOAK_CHILD_PEERS", 4);
        REQUIRE(in_process >= 1); // the schedule's churn events need an in-process peer
        for (std::size_t i = 0; i < in_process; ++i) {
            const std::string name = "soak" + std::to_string(i);
            hub::it::NodeOptions options;
            options.seed = seed_ * 1000 + i;
            options.ship_id = "soak-peer-" + std::to_string(i);
            SoakPeer p;
            p.node = std::make_unique<hub::it::Node>(name, hub::it::make_identity(name), options);
            p.ski = p.node->ski();
            p.port = p.node->port();
            peers_.push_back(std::move(p));
        }
        for (std::size_t i = 0; i < children; ++i) {
            const std::string name = "soak-child-" + std::to_string(i);
            SoakPeer p;
            p.process = std::make_unique<PeerProcess>(dir_.path / name, name, test::free_port());
            p.ski = p.process->ski();
            p.port = p.process->port();
            REQUIRE(p.process->start(shipd_ski_, shipd_port_, seed_ * 1000 + 500 + i, scaled(10s)));
            peers_.push_back(std::move(p));
        }
    }

    std::set<std::string> peer_skis() const {
        std::set<std::string> out;
        for (const auto& p : peers_)
            out.insert(p.ski);
        return out;
    }

    // Both ends trust each other and know where the other listens (child peers do their half themselves).
    void introduce(SoakPeer& p) {
        if (p.node) {
            const auto error = p.node->call([&](hub::Hub& h) -> hub::Result {
                if (auto e = h.trust(shipd_ski_)) return e;
                return h.connect(shipd_ski_, "127.0.0.1", shipd_port_);
            });
            REQUIRE_FALSE(error);
        }
        dbus("Trust", [&] { client_->hub().Trust(p.ski); });
        connect_async(p);
    }

    // --------------------------------------------------------------------------------- the schedule

    long uniform(long min, long max) { return std::uniform_int_distribution<long>(min, max)(random_); }

    SoakPeer& pick(const std::function<bool(const SoakPeer&)>& fits) {
        std::vector<SoakPeer*> candidates;
        for (auto& p : peers_)
            if (fits(p)) candidates.push_back(&p);
        return *candidates.at(static_cast<std::size_t>(uniform(0, static_cast<long>(candidates.size()) - 1)));
    }

    bool any(const std::function<bool(const SoakPeer&)>& fits) const {
        return std::any_of(peers_.begin(), peers_.end(), fits);
    }

    void step(bool restart_allowed) {
        // Weights: mostly connection churn; trust changes and kills less often; a restart now and then.
        const long roll = uniform(0, 99);
        auto in_process = [](const SoakPeer& p) { return p.node != nullptr; };
        auto untrusted = [](const SoakPeer& p) { return !p.trusted; };
        auto killable = [](const SoakPeer& p) { return p.process && p.alive; };
        if (roll < 16) {
            peer_connect(pick(in_process));
        } else if (roll < 30) {
            peer_disconnect(pick(in_process));
        } else if (roll < 44) {
            dbus_disconnect(pick([](const SoakPeer&) { return true; }));
        } else if (roll < 64) {
            double_dial(pick(in_process));
        } else if (roll < 76) {
            untrust(pick([](const SoakPeer& p) { return p.trusted; }));
        } else if (roll < 90) {
            if (any(untrusted))
                trust(pick(untrusted));
            else
                peer_connect(pick(in_process));
        } else if (roll < 97 || !restart_allowed) {
            if (any(killable))
                kill9(pick(killable));
            else
                dbus_disconnect(pick([](const SoakPeer&) { return true; }));
        } else {
            restart();
        }
    }

    // The peer dials shipd now (nothing happens if it is connected: the hub dials only absent peers).
    void peer_connect(SoakPeer& p) {
        ++counts_["connect"];
        p.node->async([this](hub::Hub& h) { return h.connect(shipd_ski_, "127.0.0.1", shipd_port_); });
    }

    // The peer ends the connection politely (SHIP close announce); both sides redial by policy.
    void peer_disconnect(SoakPeer& p) {
        ++counts_["disconnect-peer"];
        p.node->async([this](hub::Hub& h) { return h.disconnect(shipd_ski_, "soak: peer disconnects"); });
    }

    void dbus_disconnect(SoakPeer& p) {
        ++counts_["disconnect-dbus"];
        dbus("Disconnect", [&] { client_->hub().Disconnect(p.ski, "soak: app disconnects"); });
    }

    // Both ends dial each other at the same moment: shipd by D-Bus Connect, the peer through its hub. A
    // live connection is ended first, so that both really dial (each hub dials only absent peers).
    void double_dial(SoakPeer& p) {
        ++counts_["double-dial"];
        // The peer ends its side too, in the same strand turn as its dial: a closing connection counts as
        // absent, so its hub dials at once instead of waiting for shipd's close to arrive.
        p.node->async([this](hub::Hub& h) {
            h.disconnect(shipd_ski_, "soak: before a double dial");
            return h.connect(shipd_ski_, "127.0.0.1", shipd_port_);
        });
        if (checker_->connected(p.ski))
            dbus("Disconnect", [&] { client_->hub().Disconnect(p.ski, "soak: before a double dial"); });
        if (p.trusted) connect_async(p);
    }

    // The peer keeps trusting shipd and keeps dialling: shipd holds it in hello pending until Trust.
    void untrust(SoakPeer& p) {
        ++counts_["untrust"];
        p.trusted = false;
        p.missing_since.reset();
        dbus("Untrust", [&] { client_->hub().Untrust(p.ski); });
    }

    void trust(SoakPeer& p) {
        ++counts_["trust"];
        p.trusted = true;
        p.missing_since = Clock::now();
        p.late_reported = false;
        dbus("Trust", [&] { client_->hub().Trust(p.ski); });
        // Untrust forgot the address; an app that trusts again tells where the peer listens.
        connect_async(p);
    }

    void kill9(SoakPeer& p) {
        ++counts_["kill9"];
        p.process->kill9();
        p.alive = false;
        p.missing_since.reset();
        p.revive_at = Clock::now() + milliseconds(uniform(500, 3000));
    }

    void revive_due() {
        for (auto& p : peers_) {
            if (!p.revive_at || Clock::now() < *p.revive_at) continue;
            revive(p);
        }
    }

    void revive(SoakPeer& p) {
        ++counts_["revive"];
        p.revive_at.reset();
        if (!p.process->start(shipd_ski_, shipd_port_, seed_ * 1000 + 900 + counts_["revive"], scaled(10s)))
            checker_->violation("child peer " + short_ski(p.ski) + " did not restart:\n" + p.process->log());
        p.alive = true;
        p.missing_since = Clock::now();
        p.late_reported = false;
    }

    // SIGTERM: exit 0 in bounded time with STOPPING=1; the bus reports the name gone after every signal of
    // the old daemon; the new one on the same port and state gets every trusted peer back.
    void restart() {
        ++counts_["restart"];
        pump(0ms);
        const int epoch = checker_->epoch();
        shipd_->signal(SIGTERM);
        const auto status = shipd_->wait_exit(scaled(5s));
        if (status != 0)
            checker_->violation("shipd did not exit 0 within " + std::to_string(scaled(5s).count()) +
                                " ms of SIGTERM (status " + (status ? std::to_string(*status) : "none") +
                                ")");
        if (!shipd_->wait_notify("STOPPING=1", 0ms)) checker_->violation("shipd stopped without STOPPING=1");
        if (!pump_until([&] { return checker_->epoch() > epoch; }, scaled(5s)))
            checker_->violation("the bus never reported org.shipd.Hub1 gone after shipd exited");
        start_shipd();
        for (auto& p : peers_) {
            p.missing_since = Clock::now();
            p.late_reported = false;
        }
        settle("restart " + std::to_string(counts_["restart"]));
        warm_ = figures("warm baseline after restart");
        last_restart_ = Clock::now();
    }

    // --------------------------------------------------------------------------------- watching

    // D-Bus calls during churn may fairly fail with these; anything else is a breach.
    // Connect replies with the dial's outcome, which may be a while when the peer was killed: the schedule
    // goes on meanwhile. A peer that is down or gone (killed, untrusted again) makes it fail; only other
    // errors are violations.
    void connect_async(SoakPeer& p) {
        client_->connect_async(p.ski, "127.0.0.1", p.port, [this](const std::string& error) {
            if (error.empty()) return;
            ++dbus_errors_;
            for (const char* expected :
                 {"org.shipd.Hub1.Error.ConnectFailed", "org.shipd.Hub1.Error.Timeout",
                  "org.shipd.Hub1.Error.NotTrusted", "org.shipd.Hub1.Error.ShuttingDown"})
                if (error.rfind(expected, 0) == 0) return;
            checker_->violation("Connect failed: " + error);
        });
    }

    void dbus(const std::string& what, const std::function<void()>& call) {
        try {
            call();
        } catch (const sdbus::Error& e) {
            ++dbus_errors_;
            const auto& name = e.getName();
            if (name != "org.shipd.Hub1.Error.NotConnected" && name != "org.shipd.Hub1.Error.NotTrusted" &&
                name != "org.shipd.Hub1.Error.UnknownPeer")
                checker_->violation(what + " failed: " + name + ": " + e.getMessage());
        }
    }

    // Processes D-Bus traffic for `time` and feeds every new signal to the checker.
    void pump(milliseconds time) {
        client_->wait_for([] { return false; }, time);
        consume();
    }

    void consume() {
        client_->drain();
        const auto signals = client_->signals();
        client_->clear();
        if (checker_) checker_->consume(signals);
        for (const auto& s : signals)
            if (s.name == "PeerConnected" || s.name == "PeerDisconnected")
                last_connection_signal_ = Clock::now();
    }

    bool pump_until(const std::function<bool()>& done, milliseconds timeout) {
        const auto until = Clock::now() + timeout;
        for (;;) {
            consume();
            if (done()) return true;
            if (Clock::now() >= until) return false;
            pump(20ms);
        }
    }

    // A trusted, living peer that is not connected must be back within the come-back deadline of the
    // disruption (or of the moment it became expected again).
    void watch_come_back() {
        const auto now = Clock::now();
        for (auto& p : peers_) {
            if (!p.expected_connected() || checker_->connected(p.ski)) {
                if (checker_->connected(p.ski)) p.missing_since.reset();
                continue;
            }
            if (!p.missing_since) p.missing_since = now;
            if (!p.late_reported && now - *p.missing_since > come_back_) {
                p.late_reported = true;
                checker_->violation("trusted peer " + p.ski + " not back within " +
                                    std::to_string(come_back_.count()) + " ms");
            }
        }
    }

    std::string unsettled() const {
        std::string out;
        for (const auto& p : peers_)
            if (checker_->connected(p.ski) != p.expected_connected())
                out += " " + short_ski(p.ski) + (p.expected_connected() ? "(missing)" : "(unexpected)");
        return out;
    }

    // Waits until every peer is connected exactly when expected and the connection signals went quiet,
    // then checks that shipd's own views agree with the signal stream.
    void settle(const std::string& label) {
        const auto until = Clock::now() + come_back_;
        for (;;) {
            pump(50ms);
            revive_due();
            const bool agreed = unsettled().empty();
            if (agreed && Clock::now() - last_connection_signal_ > 700ms) break;
            if (Clock::now() >= until) {
                checker_->violation(label + ": not settled within " + std::to_string(come_back_.count()) +
                                    " ms:" + unsettled());
                return;
            }
        }
        ++settles_;
        checkpoint(label);
    }

    void checkpoint(const std::string& label) {
        // ListPeers: one entry per SKI, its connected flag and trust as the signals and the schedule say.
        std::map<std::string, int> entries;
        std::vector<sdbus::Struct<std::string, std::string, std::string, bool, bool>> list;
        dbus("ListPeers", [&] { list = client_->hub().ListPeers(); });
        consume();
        for (const auto& e : list) {
            const std::string& ski = e.get<0>();
            if (++entries[ski] == 2) checker_->violation(label + ": ListPeers lists " + ski + " twice");
            if (e.get<4>() != checker_->connected(ski))
                checker_->violation(label + ": ListPeers says " + ski + (e.get<4>() ? " is" : " is not") +
                                    " connected, the signals say otherwise");
        }
        std::size_t untrusted_alive = 0, dead = 0;
        for (auto& p : peers_) {
            if (p.trusted && !entries.contains(p.ski))
                checker_->violation(label + ": trusted peer " + p.ski + " missing from ListPeers");
            bool object_connected = false;
            if (entries.contains(p.ski))
                dbus("Peer.Connected", [&] { object_connected = client_->peer(p.ski).Connected(); });
            if (object_connected != checker_->connected(p.ski))
                checker_->violation(label + ": peer object of " + p.ski + " says Connected=" +
                                    (object_connected ? "true" : "false") + ", the signals say otherwise");
            if (!p.trusted && p.alive) ++untrusted_alive;
            if (!p.alive) ++dead;
        }
        // One connection per SKI from both ends: shipd holds a socket per connection (plus one per untrusted
        // peer waiting in hello and a refused dial to a dead one at most), each peer hub at most one link.
        const std::size_t low = idle_.sockets + checker_->connected_skis().size();
        const std::size_t high = low + untrusted_alive + dead;
        std::size_t sockets = 0;
        const bool in_range = pump_until(
            [&] {
                const auto f = probe(shipd_->pid());
                sockets = f ? f->sockets : 0;
                return sockets >= low && sockets <= high;
            },
            scaled(3s));
        if (!in_range)
            checker_->violation(label + ": shipd holds " + std::to_string(sockets) + " sockets, expected " +
                                std::to_string(low) + ".." + std::to_string(high));
        for (auto& p : peers_) {
            if (!p.node) continue;
            std::size_t links = 0;
            const bool one = pump_until(
                [&] {
                    links = p.node->call([](hub::Hub& h) { return h.live_connections(); });
                    return links <= 1;
                },
                scaled(3s));
            if (!one)
                checker_->violation(label + ": peer " + short_ski(p.ski) + " holds " + std::to_string(links) +
                                    " connections to shipd");
        }
    }

    ProcessFigures figures(const std::string& what) {
        const auto f = probe(shipd_->pid());
        if (!f) FAIL("cannot read /proc for shipd (" << what << ")");
        return *f;
    }

    // --------------------------------------------------------------------------------- the end

    void finish() {
        // Undo the schedule's damage, then everyone must be back and shipd's views exact.
        for (auto& p : peers_) {
            if (p.revive_at || !p.alive) revive(p);
            if (!p.trusted) trust(p);
        }
        settle("final");
        consume();
        if (checker_->connected_skis().size() != peers_.size())
            checker_->violation("final: " + std::to_string(checker_->connected_skis().size()) + " of " +
                                std::to_string(peers_.size()) + " peers connected");
        loaded_ = figures("loaded");

        // The load stops: in-process peers leave politely, child peers vanish (kill -9).
        stop_peers();
        if (!pump_until([&] { return checker_->connected_skis().empty(); }, come_back_))
            checker_->violation("peers gone but shipd still reports " +
                                std::to_string(checker_->connected_skis().size()) + " connected");
        // Forget them, so no redial holds a socket while the figures are read.
        for (auto& p : peers_)
            dbus("Untrust", [&] { client_->hub().Untrust(p.ski); });
        pump_until(
            [&] {
                const auto f = probe(shipd_->pid());
                return f && f->fds == idle_.fds;
            },
            scaled(5s));
        final_ = figures("after the load");

        shipd_->signal(SIGTERM);
        const auto status = shipd_->wait_exit(scaled(5s));
        if (status != 0)
            checker_->violation(
                "final SIGTERM: shipd did not exit 0 (status " +
                (status ? std::to_string(*status) : std::string("none")) + ")\n" +
                shipd_->log().substr(shipd_->log().size() > 4000 ? shipd_->log().size() - 4000 : 0));
    }

    void stop_peers() {
        for (auto& p : peers_)
            if (p.node && !p.node->stopped()) p.node->request_stop();
        for (auto& p : peers_) {
            if (p.node) p.node->wait_stopped();
            if (p.process) p.process->kill9();
            p.alive = false;
        }
    }

    std::uint64_t seed_;
    milliseconds duration_;
    std::mt19937_64 random_;
    test::TempDir dir_;
    test::PrivateBus bus_;
    std::uint16_t shipd_port_;
    milliseconds come_back_;
    std::unique_ptr<test::Client> client_;
    std::unique_ptr<sdbus::IProxy> bus_proxy_;
    std::unique_ptr<test::ShipdProcess> shipd_;
    std::string shipd_ski_;
    std::vector<SoakPeer> peers_;
    std::unique_ptr<InvariantChecker> checker_;
    std::map<std::string, std::size_t> counts_;
    Clock::time_point last_restart_;
    std::size_t dbus_errors_ = 0;
    std::size_t settles_ = 0;
    Clock::time_point last_connection_signal_ = Clock::now();
    ProcessFigures idle_, warm_, loaded_, final_;
};

} // namespace

TEST_CASE("chaos soak: 50+ peers, random churn, trust changes, kill -9 and restarts; invariants hold",
          "[soak]") {
    const std::uint64_t seed = env_number("SHIPD_SOAK_SEED", std::random_device{}());
    const auto seconds = env_number("SHIPD_SOAK_SECONDS", 20);
    std::printf("soak: seed %llu (replay: SHIPD_SOAK_SEED=%llu), %llu s, time scale %d\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(seconds), time_scale());
    std::fflush(stdout);
    Soak soak(seed, std::chrono::seconds(seconds));
    soak.run();
    soak.report_and_check();
}

} // namespace ship::soak
