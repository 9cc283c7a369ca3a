// Test doubles for the D-Bus service: a private dbus-daemon owned by PID, a real strand on a thread,
// a HubApi fake that insists on being called on that strand, and a single-threaded client that pumps its
// own connection so waits are event-driven with deadlines.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "hub/hub_api.hpp"
#include "hub1_proxy.hpp"
#include "net/event_loop.hpp"
#include "net/strand.hpp"

namespace ship::test {

using namespace std::chrono_literals;
inline constexpr auto deadline = 10s;

struct TempDir {
    std::filesystem::path path;
    TempDir();
    ~TempDir();
};

// `dbus-daemon --nofork --print-address=1`, killed by its PID on destruction.
class PrivateBus {
public:
    // config_file empty = `--session`; else a system-type config the test wrote.
    explicit PrivateBus(const std::filesystem::path& dir, const std::filesystem::path& config_file = {});
    ~PrivateBus();
    const std::string& address() const { return address_; }

private:
    pid_t pid_ = -1;
    std::string address_;
};

// A real strand and its event loop on a thread of their own, as in shipd. Build and start the D-Bus service
// on the test thread before start() (the loop is the test thread's until then); afterwards it lives on the
// loop. The service's stop is this strand's: stop_source().request_stop() stops "shipd" while the loop goes
// on serving the bus (as shipd's does while its connections close); stop() ends the loop and joins it.
class TestLoop {
public:
    TestLoop();
    ~TestLoop();
    TestLoop(const TestLoop&) = delete;
    TestLoop& operator=(const TestLoop&) = delete;

    ship::net::EventLoop& loop() { return strand_.loop(); }
    std::stop_source& stop_source() { return stop_; }
    void start();
    // Runs fn on the loop thread and waits for it (with the test deadline); inline before start().
    void run(const std::function<void()>& fn);
    void stop();
    bool on_strand() const { return strand_.is_on_strand(); }
    // Loop thread: runs fn on a later turn (as the hub's answers that wait for the disk come).
    void later(std::function<void()> fn) { loop().post(std::move(fn)); }

private:
    std::stop_source stop_;
    ship::net::Strand strand_;
    std::thread thread_;
};

// The hub as the service sees it. State is plain (strand-only); `off_strand_calls` counts violations.
class FakeHub : public ship::hub::HubApi {
public:
    explicit FakeHub(TestLoop& strand)
        : strand_(strand) {}

    std::string local_ski() const override;
    std::string ship_id() const override;
    std::uint16_t port() const override;
    std::string qr_code() const override;
    bool auto_accept() const override;
    void set_auto_accept(bool on) override;
    bool wait_for_trust() const override;
    void set_wait_for_trust(bool on) override;
    std::vector<ship::hub::PeerInfo> list_peers() const override;
    std::optional<ship::hub::PeerInfo> peer(std::string_view ski) const override;
    std::vector<ship::hub::DiscoveredService> list_discovered() const override;
    ship::hub::Result trust(std::string_view ski) override;
    ship::hub::Result untrust(std::string_view ski) override;
    ship::hub::Result connect(std::string_view ski, std::string_view host, std::uint16_t port) override;
    ship::hub::Result disconnect(std::string_view ski, std::string_view reason) override;
    ship::hub::Result cancel_pairing(std::string_view ski) override;
    ship::hub::Result send_data(std::string_view ski, std::string_view json) override;
    // Answers on a later loop turn, with `persist_error` if set (as the hub does when a write failed).
    void when_persisted(std::function<void(ship::hub::Result)> done) override;
    std::vector<std::string> listen_addresses() const override;
    // Records "connect ..." like connect(); answers `connect_outcome` on a later loop turn.
    ship::hub::Result connect_and_report(std::string_view ski, std::string_view host, std::uint16_t port,
                                         ConnectDone done) override;

    // Strand-only test state.
    std::string own_ski = "00112233445566778899aabbccddeeff00112233";
    std::string own_ship_id = "shipd-test-1";
    std::uint16_t own_port = 4711;
    bool auto_accept_ = false, wait_for_trust_ = true;
    std::map<std::string, ship::hub::PeerInfo> peers;
    std::vector<ship::hub::DiscoveredService> discovered;
    std::vector<std::string> calls; // "trust <ski>", "send_data <ski> <json>", ...
    std::optional<std::string> persist_error;
    ship::hub::Result connect_outcome; // what connect_and_report answers (nullopt: connected)
    std::vector<std::string> bound = {"127.0.0.1:4711"};
    int persisted_waits = 0; // when_persisted calls
    mutable int off_strand_calls = 0;

private:
    void check_strand() const;
    ship::hub::Result known_ski(std::string_view input, std::string& ski) const;
    TestLoop& strand_;
};

struct Signal {
    std::string path, name;
    std::vector<std::string> args; // strings as sent; bools "true"/"false"; property maps "Name=value"
};

// A client connection pumped by the test thread itself: calls are synchronous, signals are recorded, and
// wait_for() processes incoming messages until a predicate holds or the deadline passes.
class Client {
public:
    explicit Client(const std::string& address);
    ~Client();

    class HubProxy;
    class PeerProxy;
    HubProxy& hub();
    PeerProxy& peer(const std::string& ski);

    // Processes incoming messages until `done()` or the deadline; returns done().
    bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout = deadline);
    // Processes every message already received.
    void drain();
    std::vector<Signal> signals() const { return signals_; }
    std::optional<Signal> find(const std::string& name, const std::string& path = {}) const;
    bool wait_signal(const std::string& name, const std::string& path = {});
    void clear() { signals_.clear(); }
    // Sends org.shipd.Hub1.Connect without waiting for its reply (Connect replies with the dial's outcome,
    // which may take up to its timeout); `done` gets "" or the error's name and message, from wait_for().
    void connect_async(const std::string& ski, const std::string& host, std::uint16_t port,
                       std::function<void(const std::string& error)> done = {});
    sdbus::IConnection& connection() { return *connection_; }

    void record(Signal s) { signals_.push_back(std::move(s)); }

private:
    std::unique_ptr<sdbus::IConnection> connection_;
    std::unique_ptr<HubProxy> hub_;
    std::map<std::string, std::unique_ptr<PeerProxy>> peers_;
    std::vector<Signal> signals_;
};

std::string variant_text(const sdbus::Variant& v);

class Client::HubProxy final : public sdbus::ProxyInterfaces<org::shipd::Hub1_proxy, sdbus::Properties_proxy,
                                                             sdbus::ObjectManager_proxy> {
public:
    HubProxy(sdbus::IConnection& connection, Client& client);
    ~HubProxy();
    sdbus::IProxy& raw() { return getProxy(); }

private:
    void onPeerConnected(const std::string& ski) override;
    void onPeerDisconnected(const std::string& ski, const std::string& reason) override;
    void onPeerStateChanged(const std::string& ski, const std::string& state,
                            const std::string& error) override;
    void onPeerShipIDChanged(const std::string& ski, const std::string& ship_id) override;
    void onDiscoveredChanged() override;
    void onDataReceived(const std::string& ski, const std::string& json) override;
    void onPropertiesChanged(const std::string& interface,
                             const std::map<std::string, sdbus::Variant>& changed,
                             const std::vector<std::string>& invalidated) override;
    void
    onInterfacesAdded(const sdbus::ObjectPath& path,
                      const std::map<std::string, std::map<std::string, sdbus::Variant>>& added) override;
    void onInterfacesRemoved(const sdbus::ObjectPath& path, const std::vector<std::string>& removed) override;
    Client& client_;
};

class Client::PeerProxy final
    : public sdbus::ProxyInterfaces<org::shipd::Hub1::Peer_proxy, sdbus::Properties_proxy> {
public:
    PeerProxy(sdbus::IConnection& connection, Client& client, const std::string& path);
    ~PeerProxy();

private:
    void onPropertiesChanged(const std::string& interface,
                             const std::map<std::string, sdbus::Variant>& changed,
                             const std::vector<std::string>& invalidated) override;
    Client& client_;
    std::string path_;
};

} // namespace ship::test
