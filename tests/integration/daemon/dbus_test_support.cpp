#include "dbus_test_support.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

#include <rapidjson/document.h>

#include "ship/ski.hpp"

extern char** environ;

namespace ship::test {

using ship::hub::Error;
using ship::hub::ErrorCode;
using ship::hub::PeerInfo;
using ship::hub::Result;

TempDir::TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "shipd-dbus-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
}

TempDir::~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

PrivateBus::PrivateBus(const std::filesystem::path& dir, const std::filesystem::path& config_file) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::vector<std::string> args = {"dbus-daemon", "--nofork", "--print-address=1"};
    if (config_file.empty()) {
        args.emplace_back("--session");
        args.push_back("--address=unix:path=" + (dir / "bus").string());
    } else {
        args.push_back("--config-file=" + config_file.string());
    }
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    const int rc = posix_spawnp(&pid_, "dbus-daemon", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        throw std::runtime_error("cannot start dbus-daemon");
    }
    // The address line appears once the bus listens.
    const auto until = std::chrono::steady_clock::now() + deadline;
    std::string text;
    while (text.find('\n') == std::string::npos) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        pollfd fd{out[0], POLLIN, 0};
        if (left.count() <= 0 || poll(&fd, 1, static_cast<int>(left.count())) <= 0) break;
        char buf[512];
        const auto n = read(out[0], buf, sizeof buf);
        if (n <= 0) break;
        text.append(buf, static_cast<std::size_t>(n));
    }
    close(out[0]);
    if (text.find('\n') == std::string::npos) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        throw std::runtime_error("dbus-daemon printed no address");
    }
    address_ = text.substr(0, text.find('\n'));
}

PrivateBus::~PrivateBus() {
    if (pid_ > 0) {
        kill(pid_, SIGTERM);
        waitpid(pid_, nullptr, 0);
    }
}

TestLoop::TestLoop()
    : strand_(stop_.get_token(), ship::net::StrandOptions{std::chrono::hours(1)}) {
    // Like the hub's: a stop is a request to wind down, and the loop serves on until stop().
    strand_.on_stop([] {});
}

TestLoop::~TestLoop() {
    stop();
}

void TestLoop::start() {
    thread_ = std::thread([this] { strand_.run(); });
}

void TestLoop::run(const std::function<void()>& fn) {
    if (!thread_.joinable()) return fn();
    auto done = std::make_shared<std::promise<void>>();
    auto future = done->get_future();
    // The loop's own queue, not Strand::post: tests still act on the loop after a stop was requested.
    loop().post([&fn, done] {
        try {
            fn();
            done->set_value();
        } catch (...) {
            done->set_exception(std::current_exception());
        }
    });
    if (future.wait_for(deadline) != std::future_status::ready) throw std::runtime_error("loop did not run");
    future.get();
}

void TestLoop::stop() {
    if (!thread_.joinable()) return;
    loop().post([this] { strand_.finish(); });
    thread_.join();
}

void FakeHub::check_strand() const {
    if (!strand_.on_strand()) ++off_strand_calls;
}

std::string FakeHub::local_ski() const {
    return check_strand(), own_ski;
}
std::string FakeHub::ship_id() const {
    return check_strand(), own_ship_id;
}
std::uint16_t FakeHub::port() const {
    return check_strand(), own_port;
}
std::string FakeHub::qr_code() const {
    check_strand();
    return "SHIP;SKI:" + own_ski + ";ID:" + own_ship_id + ";ENDSHIP;";
}
bool FakeHub::auto_accept() const {
    return check_strand(), auto_accept_;
}
void FakeHub::set_auto_accept(bool on) {
    check_strand();
    calls.push_back(std::string("set_auto_accept ") + (on ? "true" : "false"));
    auto_accept_ = on;
}
bool FakeHub::wait_for_trust() const {
    return check_strand(), wait_for_trust_;
}
void FakeHub::set_wait_for_trust(bool on) {
    check_strand();
    calls.push_back(std::string("set_wait_for_trust ") + (on ? "true" : "false"));
    wait_for_trust_ = on;
}

std::vector<PeerInfo> FakeHub::list_peers() const {
    check_strand();
    std::vector<PeerInfo> out;
    for (const auto& [ski, info] : peers)
        out.push_back(info);
    return out;
}

std::optional<PeerInfo> FakeHub::peer(std::string_view ski) const {
    check_strand();
    const auto it = peers.find(std::string(ski));
    if (it == peers.end()) return std::nullopt;
    return it->second;
}

std::vector<ship::hub::DiscoveredService> FakeHub::list_discovered() const {
    return check_strand(), discovered;
}

Result FakeHub::known_ski(std::string_view input, std::string& ski) const {
    const auto normal = ship::normalize_ski(input);
    if (!normal)
        return Error{ErrorCode::invalid_ski, "'" + std::string(input) + "' is not a SKI (40 hex characters)"};
    ski = *normal;
    if (!peers.count(ski)) return Error{ErrorCode::unknown_peer, "no peer with SKI " + ski};
    return std::nullopt;
}

Result FakeHub::trust(std::string_view input) {
    check_strand();
    const auto ski = ship::normalize_ski(input);
    if (!ski)
        return Error{ErrorCode::invalid_ski, "'" + std::string(input) + "' is not a SKI (40 hex characters)"};
    calls.push_back("trust " + *ski);
    auto& p = peers[*ski];
    p.ski = *ski;
    p.trusted = true;
    return std::nullopt;
}

Result FakeHub::untrust(std::string_view input) {
    check_strand();
    std::string ski;
    if (auto e = known_ski(input, ski)) return e;
    calls.push_back("untrust " + ski);
    peers[ski].trusted = false;
    return std::nullopt;
}

Result FakeHub::connect(std::string_view input, std::string_view host, std::uint16_t port) {
    check_strand();
    const auto ski = ship::normalize_ski(input);
    if (!ski)
        return Error{ErrorCode::invalid_ski, "'" + std::string(input) + "' is not a SKI (40 hex characters)"};
    const auto it = peers.find(*ski);
    if (it == peers.end() || !it->second.trusted)
        return Error{ErrorCode::not_trusted, "SKI " + *ski + " is not trusted"};
    if (port == 0) return Error{ErrorCode::invalid_argument, "port 0 cannot be dialled"};
    calls.push_back("connect " + *ski + " " + std::string(host) + " " + std::to_string(port));
    return std::nullopt;
}

std::vector<std::string> FakeHub::listen_addresses() const {
    check_strand();
    return bound;
}

Result FakeHub::connect_and_report(std::string_view input, std::string_view host, std::uint16_t port,
                                   ConnectDone done) {
    if (host.empty() && port == 0) {
        // The peer object's Connect(): the known address.
        check_strand();
        std::string ski;
        if (auto e = known_ski(input, ski)) return e;
        if (!peers[ski].trusted) return Error{ErrorCode::not_trusted, "SKI " + ski + " is not trusted"};
        calls.push_back("connect " + ski + " (known address)");
    } else if (auto refused = connect(input, host, port)) {
        return refused;
    }
    strand_.later([this, done = std::move(done)] {
        if (done) done(connect_outcome);
    });
    return std::nullopt;
}

Result FakeHub::disconnect(std::string_view input, std::string_view reason) {
    check_strand();
    std::string ski;
    if (auto e = known_ski(input, ski)) return e;
    if (!peers[ski].connected) return Error{ErrorCode::not_connected, "SKI " + ski + " is not connected"};
    calls.push_back("disconnect " + ski + " " + std::string(reason));
    return std::nullopt;
}

Result FakeHub::cancel_pairing(std::string_view input) {
    check_strand();
    std::string ski;
    if (auto e = known_ski(input, ski)) return e;
    calls.push_back("cancel_pairing " + ski);
    return std::nullopt;
}

void FakeHub::when_persisted(std::function<void(Result)> done) {
    check_strand();
    ++persisted_waits;
    strand_.later([this, done = std::move(done)] {
        if (!persist_error) return done(std::nullopt);
        done(Error{ErrorCode::invalid_argument, "could not store the change on disk: " + *persist_error});
    });
}

Result FakeHub::send_data(std::string_view input, std::string_view json) {
    check_strand();
    std::string ski;
    if (auto e = known_ski(input, ski)) return e;
    if (!peers[ski].connected) return Error{ErrorCode::not_connected, "SKI " + ski + " is not connected"};
    rapidjson::Document doc;
    doc.Parse(json.data(), json.size());
    if (doc.HasParseError() || !doc.IsObject())
        return Error{ErrorCode::invalid_json, "not a SPINE JSON object: " + std::string(json)};
    calls.push_back("send_data " + ski + " " + std::string(json));
    return std::nullopt;
}

std::string variant_text(const sdbus::Variant& v) {
    const auto type = v.peekValueType();
    if (type == "s") return v.get<std::string>();
    if (type == "b") return v.get<bool>() ? "true" : "false";
    if (type == "q") return std::to_string(v.get<std::uint16_t>());
    if (type == "t") return std::to_string(v.get<std::uint64_t>());
    return "<" + type + ">";
}

Client::Client(const std::string& address)
    : connection_(sdbus::createSessionBusConnectionWithAddress(address)) {
    hub_ = std::make_unique<HubProxy>(*connection_, *this);
}

Client::~Client() {
    peers_.clear();
    hub_.reset();
}

Client::HubProxy& Client::hub() {
    return *hub_;
}

Client::PeerProxy& Client::peer(const std::string& ski) {
    auto& slot = peers_[ski];
    if (!slot)
        slot = std::make_unique<PeerProxy>(*connection_, *this, std::string("/org/shipd/Hub1/peer/") + ski);
    return *slot;
}

void Client::connect_async(const std::string& ski, const std::string& host, std::uint16_t port,
                           std::function<void(const std::string& error)> done) {
    (void)hub_->raw()
        .callMethodAsync("Connect")
        .onInterface("org.shipd.Hub1")
        .withArguments(ski, host, port)
        .uponReplyInvoke([done = std::move(done)](const sdbus::Error* error) {
            if (done) done(error ? error->getName() + ": " + error->getMessage() : std::string());
        });
}

bool Client::wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        drain();
        if (done()) return true;
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        const auto data = connection_->getEventLoopPollData();
        int wait_ms = static_cast<int>(left.count());
        const int bus_ms = data.getPollTimeout();
        if (bus_ms >= 0 && bus_ms < wait_ms) wait_ms = bus_ms;
        pollfd fd{data.fd, data.events, 0};
        poll(&fd, 1, wait_ms);
    }
}

void Client::drain() {
    while (connection_->processPendingRequest()) {
    }
}

std::optional<Signal> Client::find(const std::string& name, const std::string& path) const {
    for (const auto& s : signals_) {
        if (s.name == name && (path.empty() || s.path == path)) return s;
    }
    return std::nullopt;
}

bool Client::wait_signal(const std::string& name, const std::string& path) {
    return wait_for([&] { return find(name, path).has_value(); });
}

Client::HubProxy::HubProxy(sdbus::IConnection& connection, Client& client)
    : ProxyInterfaces(connection, "org.shipd.Hub1", "/org/shipd/Hub1")
    , client_(client) {
    registerProxy();
}

Client::HubProxy::~HubProxy() {
    unregisterProxy();
}

void Client::HubProxy::onPeerConnected(const std::string& ski) {
    client_.record({"/org/shipd/Hub1", "PeerConnected", {ski}});
}
void Client::HubProxy::onPeerDisconnected(const std::string& ski, const std::string& reason) {
    client_.record({"/org/shipd/Hub1", "PeerDisconnected", {ski, reason}});
}
void Client::HubProxy::onPeerStateChanged(const std::string& ski, const std::string& state,
                                          const std::string& error) {
    client_.record({"/org/shipd/Hub1", "PeerStateChanged", {ski, state, error}});
}
void Client::HubProxy::onPeerShipIDChanged(const std::string& ski, const std::string& ship_id) {
    client_.record({"/org/shipd/Hub1", "PeerShipIDChanged", {ski, ship_id}});
}
void Client::HubProxy::onDiscoveredChanged() {
    client_.record({"/org/shipd/Hub1", "DiscoveredChanged", {}});
}
void Client::HubProxy::onDataReceived(const std::string& ski, const std::string& json) {
    client_.record({"/org/shipd/Hub1", "DataReceived", {ski, json}});
}
void Client::HubProxy::onPropertiesChanged(const std::string& interface,
                                           const std::map<std::string, sdbus::Variant>& changed,
                                           const std::vector<std::string>&) {
    Signal s{"/org/shipd/Hub1", "PropertiesChanged", {interface}};
    for (const auto& [name, value] : changed)
        s.args.push_back(name + "=" + variant_text(value));
    client_.record(std::move(s));
}
void Client::HubProxy::onInterfacesAdded(
    const sdbus::ObjectPath& path,
    const std::map<std::string, std::map<std::string, sdbus::Variant>>& added) {
    Signal s{path, "InterfacesAdded", {}};
    for (const auto& [interface, properties] : added) {
        s.args.push_back(interface);
        for (const auto& [name, value] : properties)
            s.args.push_back(interface + "." + name + "=" + variant_text(value));
    }
    client_.record(std::move(s));
}
void Client::HubProxy::onInterfacesRemoved(const sdbus::ObjectPath& path,
                                           const std::vector<std::string>& removed) {
    client_.record({path, "InterfacesRemoved", removed});
}

Client::PeerProxy::PeerProxy(sdbus::IConnection& connection, Client& client, const std::string& path)
    : ProxyInterfaces(connection, "org.shipd.Hub1", path)
    , client_(client)
    , path_(path) {
    registerProxy();
}

Client::PeerProxy::~PeerProxy() {
    unregisterProxy();
}

void Client::PeerProxy::onPropertiesChanged(const std::string& interface,
                                            const std::map<std::string, sdbus::Variant>& changed,
                                            const std::vector<std::string>&) {
    Signal s{path_, "PropertiesChanged", {interface}};
    for (const auto& [name, value] : changed)
        s.args.push_back(name + "=" + variant_text(value));
    client_.record(std::move(s));
}

} // namespace ship::test
