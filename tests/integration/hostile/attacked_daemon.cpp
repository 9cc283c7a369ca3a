#include "attacked_daemon.hpp"

#include <signal.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace ship::test::hostile {

int time_scale() {
    const char* scale = std::getenv("SHIPD_TEST_TIME_SCALE");
    return scale ? std::max(1, std::atoi(scale)) : 1;
}

std::chrono::milliseconds scaled(std::chrono::milliseconds bound) {
    return bound * time_scale();
}

bool sanitized_build() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return true;
#else
    return false;
#endif
#else
    return false;
#endif
}

long rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
    return 0;
}

// ---- Bystander ----

Bystander::Bystander(std::uint16_t port, const std::string& daemon_ski)
    : identity_(net::test::make_identity("hostile-bystander")) {
    strand_.call([&] {
        auto client = std::make_shared<net::Client>(strand_.strand(), net::test::client_config(identity_));
        strand_.keep(client);
        auto placeholder = std::make_shared<net::test::Recorder>(); // replaced by the session at once
        strand_.keep(placeholder);
        auto link = client->dial({"127.0.0.1", port, "/ship/", daemon_ski}, *placeholder);
        ship::ConnectionConfig config;
        config.own_ship_id = "hostile-bystander";
        config.peer_trusted = true;
        // Kind shutdown: the SME's close bounds still run while the strand drains at the end.
        timers_ = std::make_unique<hub::StrandTimers>(strand_.strand(), net::Timer::Kind::shutdown);
        connection_ = std::make_unique<hub::PeerConnection>(*timers_, *this, link, hub::Direction::outgoing,
                                                            std::move(config));
    });
}

Bystander::~Bystander() {
    strand_.stop_and_join(); // no callback into this object after this line
    // The strand is gone: nothing can run on it any more, so the connection and its timers go here.
    connection_.reset();
    timers_.reset();
}

bool Bystander::wait_completed(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, timeout, [&] { return completed_ || ended_; });
    return completed_ && !ended_;
}

bool Bystander::wait_data(std::size_t count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return data_ >= count; });
}

bool Bystander::ended() {
    std::lock_guard lock(mutex_);
    return ended_.has_value();
}

std::string Bystander::end_reason() {
    std::lock_guard lock(mutex_);
    return ended_.value_or("");
}

void Bystander::on_completed(hub::PeerConnection&) {
    std::lock_guard lock(mutex_);
    completed_ = true;
    changed_.notify_all();
}

void Bystander::on_data(hub::PeerConnection&, const std::string&) {
    std::lock_guard lock(mutex_);
    ++data_;
    changed_.notify_all();
}

void Bystander::on_ended(hub::PeerConnection& connection, const net::CloseInfo& info) {
    std::lock_guard lock(mutex_);
    ended_ = connection.end_description(info.reason) + " (close " + std::to_string(info.code) + " " +
             info.reason + ")";
    changed_.notify_all();
}

// ---- AttackedDaemon ----

AttackedDaemon::AttackedDaemon(DaemonLimits limits) {
    bus_ = std::make_unique<PrivateBus>(dir_.path);
    const auto config = dir_.path / "shipd.conf";
    std::ofstream(config) << "{\"max_handshakes\": " << limits.max_handshakes
                          << ", \"max_connections\": " << limits.max_connections << "}\n";
    process_ = std::make_unique<ShipdProcess>(
        std::vector<std::string>{"--config", config.string(), "--state-dir", (dir_.path / "state").string(),
                                 "--port", "0", "--no-mdns", "--bus-address", bus_->address(),
                                 "--auto-accept", "--log-level", "info"},
        dir_.path / "shipd.log");
    if (!process_->wait_notify("READY=1", scaled(10s)))
        throw std::runtime_error("shipd did not become ready:\n" + process_->log());
    dbus_ = std::make_unique<Client>(bus_->address());
    ski_ = dbus_->hub().LocalSKI();
    port_ = dbus_->hub().Port();
    bystander_ = std::make_unique<Bystander>(port_, ski_);
    if (!bystander_->wait_completed(scaled(10s)))
        throw std::runtime_error("the bystander did not reach data exchange: " + bystander_->end_reason());
    if (!dbus_->wait_for([&] { return dbus_->find("PeerConnected").has_value(); }, scaled(10s)))
        throw std::runtime_error("shipd reported no PeerConnected for the bystander");
}

AttackedDaemon::~AttackedDaemon() {
    bystander_.reset();
    dbus_.reset();
    process_.reset(); // SIGKILL: nothing here is about a clean stop
    bus_.reset();
}

bool AttackedDaemon::answers() {
    if (kill(pid(), 0) != 0 || process_->wait_exit(0ms)) return false;
    try {
        return dbus_->hub().Port() == port_ && !dbus_->hub().ListPeers().empty();
    } catch (const std::exception&) {
        return false;
    }
}

bool AttackedDaemon::bystander_intact(std::string& why) {
    dbus_->drain();
    for (const auto& s : dbus_->signals())
        if (s.name == "PeerDisconnected" && !s.args.empty() && s.args[0] == bystander_->ski()) {
            why = "shipd reported PeerDisconnected for the bystander: " + s.args.at(1);
            return false;
        }
    if (bystander_->ended()) {
        why = "the bystander's link ended: " + bystander_->end_reason();
        return false;
    }
    bool connected = false;
    for (const auto& p : dbus_->hub().ListPeers())
        if (p.get<0>() == bystander_->ski()) connected = p.get<4>();
    if (!connected) {
        why = "ListPeers does not show the bystander connected";
        return false;
    }
    dbus_->hub().SendData(bystander_->ski(), R"({"datagram":{"header":{"msgCounter":)" +
                                                 std::to_string(++data_sent_) +
                                                 R"(},"payload":{"cmd":[]}}})");
    if (!bystander_->wait_data(data_sent_, scaled(5s))) {
        why = "SendData to the bystander did not arrive";
        return false;
    }
    return true;
}

long AttackedDaemon::wait_rss_at_most(long limit_kib, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    long rss = rss_kib();
    // RSS has no change event to wait on: read it at a short period until it is low enough or time is up.
    while (rss > limit_kib && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(50ms);
        rss = rss_kib();
    }
    return rss;
}

} // namespace ship::test::hostile
