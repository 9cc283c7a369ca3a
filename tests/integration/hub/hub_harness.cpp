#include "hub_harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <stdexcept>

#include <catch2/catch.hpp>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "ship/frame.hpp"
#include "ship/messages.hpp"

namespace ship::hub::it {

// ------------------------------------------------------------------------------------------ logging

namespace {

// Keeps the hub's refusal lines so a test can check that a refusal was logged.
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    std::vector<std::string> lines(const std::string& needle) {
        std::lock_guard lock(mutex_);
        std::vector<std::string> out;
        for (const auto& line : lines_)
            if (line.find(needle) != std::string::npos) out.push_back(line);
        return out;
    }

protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        std::string text(msg.payload.data(), msg.payload.size());
        if (text.find("refused") != std::string::npos) lines_.push_back(std::move(text));
    }
    void flush_() override {}

private:
    std::vector<std::string> lines_;
};

std::shared_ptr<CaptureSink> capture_sink;

// Info and above reach the capture sink; the console shows warnings, or what SPDLOG_LEVEL asks for.
void setup_logging() {
    static std::once_flag once;
    std::call_once(once, [] {
        // Several strands in one process (a test-only setup: the daemon has one) make libwebsockets call
        // tzset() on several threads. With TZ unset glibc then frees and re-duplicates its cached zone name
        // on every call, under a lock TSan cannot see; with TZ set the call returns early. Runs before any
        // strand thread exists.
        ::setenv("TZ", ":/etc/localtime", 0);
        ::tzset();
        capture_sink = std::make_shared<CaptureSink>();
        capture_sink->set_level(spdlog::level::info);
        auto console = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
        auto console_level = spdlog::level::warn;
        if (const char* env = std::getenv("SPDLOG_LEVEL")) console_level = spdlog::level::from_str(env);
        console->set_level(console_level);
        auto logger =
            std::make_shared<spdlog::logger>("hubit", spdlog::sinks_init_list{console, capture_sink});
        logger->set_level(std::min(console_level, spdlog::level::info));
        spdlog::set_default_logger(logger);
    });
}

} // namespace

std::vector<std::string> logged(const std::string& needle) {
    setup_logging();
    return capture_sink->lines(needle);
}

int time_scale() {
    const char* env = std::getenv("SHIPD_TEST_TIME_SCALE");
    const int scale = env ? std::atoi(env) : 1;
    return scale > 1 ? scale : 1;
}

[[noreturn]] void watchdog_abort(const std::string& what) {
    std::fprintf(stderr, "WATCHDOG: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

std::string to_string(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& line : lines)
        out += line + "\n";
    return out;
}

// ------------------------------------------------------------------------------------------ helpers

tls::Identity make_identity(const std::string& name) {
    return tls::generate_identity({name, "shipd hub tests", {}, {}});
}

std::pair<tls::Identity, tls::Identity> larger_and_smaller() {
    auto a = make_identity("hubit-1"), b = make_identity("hubit-2");
    if (a.ski < b.ski) std::swap(a, b);
    return {std::move(a), std::move(b)};
}

std::uint64_t seed_with_draws(const std::vector<Draw>& draws) {
    for (std::uint64_t seed = 1; seed < 1'000'000; ++seed) {
        SeededRandom random(seed);
        bool fits = true;
        for (const auto& wanted : draws) {
            const DelayRange range = attempt_delay(wanted.attempt);
            const auto draw = std::chrono::milliseconds(random.uniform(range.min.count(), range.max.count()));
            fits = fits && draw >= wanted.min && draw <= wanted.max;
        }
        if (fits) return seed;
    }
    throw std::runtime_error("no seed gives the wanted dial delays");
}

TempDir::TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "shipd-hubit-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
}

TempDir::~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
}

// ------------------------------------------------------------------------------------------ event log

void EventLog::record(Event event) {
    const bool on_strand = strand_.is_on_strand();
    std::lock_guard lock(mutex_);
    const std::string what = std::to_string(static_cast<int>(event.kind)) + " for " + event.ski;
    if (!on_strand) violations_.push_back("event off the strand: " + what);
    if (run_returned_) violations_.push_back("event after run() returned: " + what);
    if (event.kind == Event::Kind::connected) {
        if (std::exchange(connected_[event.ski], true))
            violations_.push_back("peer_connected twice without peer_disconnected: " + event.ski);
    } else if (event.kind == Event::Kind::disconnected) {
        if (!std::exchange(connected_[event.ski], false))
            violations_.push_back("peer_disconnected without peer_connected: " + event.ski + " (" +
                                  event.text + ")");
    }
    events_.push_back(std::move(event));
    changed_.notify_all();
}

void EventLog::peer_connected(const std::string& ski) {
    record({Event::Kind::connected, ski, {}});
}
void EventLog::peer_disconnected(const std::string& ski, const std::string& reason) {
    record({Event::Kind::disconnected, ski, reason});
}
void EventLog::peer_state_changed(const std::string& ski, PeerState state, const std::string& error) {
    record({Event::Kind::state, ski, error, state});
}
void EventLog::peer_ship_id_changed(const std::string& ski, const std::string& ship_id) {
    record({Event::Kind::ship_id, ski, ship_id});
}
void EventLog::discovered_changed() {
    record({Event::Kind::discovered, {}, {}});
}
void EventLog::data_received(const std::string& ski, const std::string& json) {
    record({Event::Kind::data, ski, json});
}
void EventLog::peer_added(const PeerInfo& peer) {
    record({Event::Kind::added, peer.ski, {}, peer.state});
}
void EventLog::peer_changed(const PeerInfo& peer) {
    record({Event::Kind::changed, peer.ski, {}, peer.state});
}
void EventLog::peer_removed(const std::string& ski) {
    record({Event::Kind::removed, ski, {}});
}

std::vector<Event> EventLog::events() {
    std::lock_guard lock(mutex_);
    return events_;
}

int EventLog::count(Event::Kind kind, const std::string& ski) {
    std::lock_guard lock(mutex_);
    return static_cast<int>(std::count_if(events_.begin(), events_.end(),
                                          [&](const Event& e) { return e.kind == kind && e.ski == ski; }));
}

std::vector<std::string> EventLog::violations() {
    std::lock_guard lock(mutex_);
    return violations_;
}

bool EventLog::connected(const std::string& ski) {
    std::lock_guard lock(mutex_);
    auto it = connected_.find(ski);
    return it != connected_.end() && it->second;
}

std::vector<std::string> EventLog::connected_skis() {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [ski, on] : connected_)
        if (on) out.push_back(ski);
    return out;
}

void EventLog::mark_run_returned() {
    std::lock_guard lock(mutex_);
    run_returned_ = true;
}

bool EventLog::wait(const std::function<bool(const std::vector<Event>&)>& predicate,
                    std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return predicate(events_); });
}

bool EventLog::wait_count(Event::Kind kind, const std::string& ski, int n,
                          std::chrono::milliseconds timeout) {
    return wait(
        [&](const std::vector<Event>& events) {
            return std::count_if(events.begin(), events.end(),
                                 [&](const Event& e) { return e.kind == kind && e.ski == ski; }) >= n;
        },
        timeout);
}

void EventLog::wait_any(std::chrono::milliseconds at_most) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, at_most);
}

bool eventually(EventLog& log, const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (Clock::now() >= until) return false;
        log.wait_any(20ms);
    }
}

// ------------------------------------------------------------------------------------------ node

namespace {

void write_trust_file(const std::filesystem::path& dir,
                      const std::vector<std::pair<std::string, std::string>>& peers) {
    std::string text = "{\"version\":1,\"peers\":[";
    for (std::size_t i = 0; i < peers.size(); ++i) {
        if (i) text += ",";
        text += "{\"ski\":\"" + peers[i].first + "\",\"shipId\":\"" + peers[i].second + "\"}";
    }
    text += "]}";
    std::ofstream(dir / std::string(TrustStore::file_name)) << text;
}

} // namespace

Node::Node(std::string name, tls::Identity identity, NodeOptions options)
    : name_(std::move(name))
    , identity_(std::move(identity)) {
    setup_logging();
    if (!options.pre_trusted.empty()) write_trust_file(state_.path(), options.pre_trusted);
    net::StrandOptions strand_options;
    strand_options.shutdown_bound = options.shutdown_bound;
    strand_ = std::make_unique<net::Strand>(stop_.get_token(), strand_options);
    log_ = std::make_unique<EventLog>(*strand_);

    HubConfig config;
    config.ship_id = options.ship_id.empty() ? "hubit-" + name_ : options.ship_id;
    config.certificate_pem = identity_.certificate_pem;
    config.private_key_pem = identity_.private_key_pem;
    config.local_ski = identity_.ski;
    config.qr_code = "SHIP;SKI:" + identity_.ski + ";ID:" + config.ship_id + ";ENDSHIP;";
    config.listen_address = options.listen_address;
    config.port = 0;
    config.auto_accept = options.auto_accept;
    config.wait_for_trust = options.wait_for_trust;
    config.max_connections = options.max_connections;
    config.max_handshakes = options.max_handshakes;
    config.rule = options.rule;
    config.link = options.link;
    config.connect_timeout = options.connect_timeout;
    config.ship_timers = options.ship_timers;
    config.passive_wait = options.passive_wait;
    config.verdict_wait = options.verdict_wait;
    config.probe_bound = options.probe_bound;
    config.random_seed = options.seed;

    // Built on this thread before run(): the thread that made the Strand counts as the strand until then.
    loop_ = std::make_unique<StrandLoop>(*strand_);
    network_ = std::make_unique<LwsNetwork>(*strand_, config);
    hub_ = std::make_unique<Hub>(
        *loop_, *network_, std::move(config),
        TrustStore::load(state_.path(), [strand = strand_.get()](std::function<void()> fn) {
            strand->post(std::move(fn));
        }));
    hub_->set_events(log_.get());
    hub_->start();
    port_ = hub_->port();
    returned_future_ = returned_.get_future();
    thread_ = std::thread([this] {
        strand_->run();
        stopped_at_ = Clock::now(); // published to the test thread by the promise
        returned_.set_value();
    });
}

Node::~Node() {
    stop();
    timers_.clear();
    hub_.reset(); // parked strand: this thread may drop what lived on it (Strand contract 5)
    network_.reset();
    loop_.reset();
    strand_.reset();
}

void Node::at(Clock::time_point when, std::function<void(Hub&)> fn) {
    if (!strand_->post([this, when, fn = std::move(fn)]() mutable {
            auto timer = std::make_unique<net::Timer>(*strand_);
            const auto delay = std::max(Clock::duration::zero(), when - Clock::now());
            timer->start(std::chrono::duration_cast<std::chrono::microseconds>(delay),
                         [this, fn = std::move(fn)] { fn(*hub_); });
            timers_.push_back(std::move(timer));
        }))
        throw std::runtime_error(name_ + ": strand is stopping");
}

void Node::trust_and_connect(const Node& other) {
    const auto error = call([&](Hub& hub) -> Result {
        if (auto e = hub.trust(other.ski())) return e;
        return hub.connect(other.ski(), "127.0.0.1", other.port());
    });
    INFO(name_ << " trust/connect " << other.name() << ": " << (error ? error->message : "ok"));
    REQUIRE_FALSE(error);
}

std::chrono::milliseconds Node::stop(std::chrono::milliseconds bound) {
    request_stop();
    return wait_stopped(bound);
}

void Node::request_stop() {
    if (stop_requested_) return;
    stop_requested_ = Clock::now();
    stop_.request_stop();
}

std::chrono::milliseconds Node::wait_stopped(std::chrono::milliseconds bound) {
    if (!stop_requested_) throw std::logic_error("wait_stopped() before request_stop()");
    if (!stopped_) {
        if (returned_future_.wait_until(*stop_requested_ + bound) != std::future_status::ready)
            watchdog_abort(name_ + ": Strand::run() did not return after stop within the deadline");
        thread_.join();
        log_->mark_run_returned();
        stopped_ = true;
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(stopped_at_ - *stop_requested_);
}

Hub& Node::parked_hub() {
    if (!stopped_) throw std::logic_error("parked_hub() before stop()");
    return *hub_;
}

Node::Block::Block(Node& node) {
    auto entered = std::make_shared<std::promise<void>>();
    auto entered_future = entered->get_future();
    std::shared_future<void> released = release_.get_future().share();
    if (!node.strand().post([entered, released] {
            entered->set_value();
            released.wait();
        }))
        throw std::runtime_error(node.name() + ": cannot block a stopping strand");
    if (entered_future.wait_for(deadline) != std::future_status::ready)
        watchdog_abort(node.name() + ": the strand did not take the blocking call");
}

void Node::Block::release() {
    if (std::exchange(released_, true)) return;
    release_.set_value();
}

bool same_link(Node& a, Node& b, const std::string& marker) {
    const std::string to_b = marker + "-to-" + b.name(), to_a = marker + "-to-" + a.name();
    auto send = [](Node& from, const Node& to, const std::string& text) {
        return from.call([&](Hub& hub) {
            return !hub.send_data(to.ski(),
                                  "{\"datagram\":{\"header\":{},\"payload\":{\"marker\":\"" + text + "\"}}}");
        });
    };
    if (!send(a, b, to_b) || !send(b, a, to_a)) return false;
    auto arrived = [](Node& at, const Node& from, const std::string& text) {
        return at.log().wait(
            [&](const std::vector<Event>& events) {
                return std::any_of(events.begin(), events.end(), [&](const Event& e) {
                    return e.kind == Event::Kind::data && e.ski == from.ski() &&
                           e.text.find(text) != std::string::npos;
                });
            },
            5s);
    };
    return arrived(b, a, to_b) && arrived(a, b, to_a);
}

// ------------------------------------------------------------------------------------------ peer pool

class PeerPool::Peer final : public net::LinkHandler {
public:
    Peer(PeerPool& pool, std::size_t index, Mode mode, const std::string& ship_id)
        : pool_(pool)
        , index_(index)
        , mode_(mode)
        , confirm_timer_(*pool.strand_) {
        if (mode_ != Mode::silent) {
            ship::ConnectionConfig config;
            config.own_ship_id = ship_id;
            config.peer_trusted = true;
            config.allow_waiting_for_trust = true;
            sme_.emplace(std::move(config));
        }
    }

    void on_open(net::Link&) override {
        update([](Outcome& o) { o.opened = true; });
        if (sme_) {
            sme_->open(ship::Role::client, Clock::now());
            run_actions();
        }
    }

    void on_message(net::Link&, std::vector<std::uint8_t> message) override {
        const auto parsed = ship::parse_frame(message);
        bool announce = false;
        if (const auto* frame = std::get_if<ship::Frame>(&parsed)) {
            const auto decoded = ship::msg::decode(*frame);
            if (const auto* m = std::get_if<ship::msg::Message>(&decoded))
                if (const auto* close = std::get_if<ship::msg::ConnectionClose>(m);
                    close && close->phase == ship::msg::ClosePhase::announce)
                    announce = true;
        }
        if (announce) {
            update([](Outcome& o) {
                ++o.close_announces;
                if (!o.announce_at) o.announce_at = Clock::now();
            });
            if (mode_ == Mode::ship_no_confirm) return;
            if (mode_ == Mode::ship_late_confirm) {
                confirm_timer_.start(late_confirm, [this, message = std::move(message)] {
                    if (!sme_) return;
                    sme_->receive(message, Clock::now());
                    run_actions();
                });
                return;
            }
        }
        if (sme_) {
            sme_->receive(message, Clock::now());
            run_actions();
        }
    }

    void on_closed(net::Link&, const net::CloseInfo& info) override {
        confirm_timer_.cancel();
        update([&](Outcome& o) {
            o.closed = info;
            o.closed_at = Clock::now();
        });
    }

    bool send_data(const std::string& json) {
        if (!sme_ || sme_->send_data(json)) return false;
        run_actions();
        return true;
    }

    std::shared_ptr<net::Link> link;

private:
    template <typename F>
    void update(F&& change) {
        std::lock_guard lock(pool_.mutex_);
        change(pool_.outcomes_[index_]);
        pool_.changed_.notify_all();
    }

    void run_actions() {
        for (auto& action : sme_->take_actions()) {
            if (auto* send = std::get_if<ship::action::Send>(&action)) {
                if (link) link->send(send->bytes);
            } else if (auto* close = std::get_if<ship::action::CloseTransport>(&action)) {
                if (link) link->close(close->code, close->reason);
            } else if (std::holds_alternative<ship::action::Completed>(action)) {
                update([](Outcome& o) { o.data_exchange = true; });
            } else if (auto* data = std::get_if<ship::action::DataReceived>(&action)) {
                update([&](Outcome& o) { o.data.push_back(data->json); });
            }
            // Timers are not armed: every test waits with its own deadline.
        }
    }

    PeerPool& pool_;
    std::size_t index_;
    Mode mode_;
    net::Timer confirm_timer_;
    std::optional<ship::Connection> sme_;
};

PeerPool::PeerPool() {
    setup_logging();
    strand_ = std::make_unique<net::Strand>(stop_.get_token());
    thread_ = std::thread([this] { strand_->run(); });
}

PeerPool::~PeerPool() {
    stop_.request_stop();
    thread_.join();
    peers_.clear(); // parked strand (contract 5): links, clients, then the strand
    clients_.clear();
    strand_.reset();
}

template <typename F>
auto PeerPool::call(F&& fn) -> decltype(fn()) {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(fn));
    auto result = task->get_future();
    if (!strand_->post([task] { (*task)(); })) throw std::runtime_error("peer pool: strand is stopping");
    if (result.wait_for(deadline) != std::future_status::ready)
        watchdog_abort("peer pool: the strand did not run a call within the deadline");
    return result.get();
}

std::size_t PeerPool::add_identity(const tls::Identity& identity, std::string ship_id) {
    return call([&] {
        net::ClientConfig config;
        config.certificate_pem = identity.certificate_pem;
        config.private_key_pem = identity.private_key_pem;
        config.connect_timeout = 10s;
        clients_.push_back(std::make_unique<net::Client>(*strand_, std::move(config)));
        if (ship_id.empty()) ship_id = "hubit-peer-" + std::to_string(clients_.size() - 1);
        ship_ids_.push_back(ship_id);
        return clients_.size() - 1;
    });
}

std::size_t PeerPool::dial(std::size_t identity, std::uint16_t port, const std::string& expected_ski,
                           Mode mode, std::size_t count) {
    return call([&] {
        std::size_t first = 0;
        for (std::size_t i = 0; i < count; ++i) {
            std::size_t index;
            {
                std::lock_guard lock(mutex_);
                index = outcomes_.size();
                outcomes_.emplace_back();
            }
            if (i == 0) first = index;
            auto peer = std::make_shared<Peer>(*this, index, mode, ship_ids_.at(identity));
            net::DialRequest request;
            request.host = "127.0.0.1";
            request.port = port;
            request.path = "/ship/";
            request.expected_ski = expected_ski;
            peer->link = clients_.at(identity)->dial(request, *peer);
            peers_.push_back(std::move(peer));
        }
        return first;
    });
}

bool PeerPool::send_data(std::size_t link, const std::string& json) {
    return call([&] { return peers_.at(link)->send_data(json); });
}

void PeerPool::close(std::size_t link, std::uint16_t code, const std::string& reason) {
    call([&] {
        if (auto& l = peers_.at(link)->link) l->close(code, reason);
    });
}

PeerPool::Outcome PeerPool::outcome(std::size_t link) {
    std::lock_guard lock(mutex_);
    return outcomes_.at(link);
}

std::vector<PeerPool::Outcome> PeerPool::outcomes() {
    std::lock_guard lock(mutex_);
    return outcomes_;
}

bool PeerPool::wait(const std::function<bool(const std::vector<Outcome>&)>& predicate,
                    std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return predicate(outcomes_); });
}

// ------------------------------------------------------------------------------------------ tarpit

Tarpit::Tarpit(std::uint16_t port, const std::string& where) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    if (::inet_pton(AF_INET, where.c_str(), &address.sin_addr) != 1)
        throw std::runtime_error("tarpit: " + where + " is no IPv4 address");
    if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(listen_fd_, 64) != 0 || ::pipe2(wake_, O_CLOEXEC) != 0)
        throw std::runtime_error("tarpit listener failed");
    socklen_t size = sizeof(address);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] {
        for (;;) {
            std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
            for (int fd : fds_)
                fds.push_back({fd, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), -1) < 0) continue;
            if (fds[1].revents) return;
            for (std::size_t i = 2; i < fds.size(); ++i) {
                if (!fds[i].revents) continue;
                char buffer[4096]; // the ClientHello: read and never answered
                if (::recv(fds[i].fd, buffer, sizeof(buffer), 0) > 0) continue;
                ::close(fds[i].fd);
                std::erase(fds_, fds[i].fd);
                std::lock_guard lock(mutex_);
                ++hung_up_;
                last_hung_up_at_ = Clock::now();
                changed_.notify_all();
            }
            if (!fds[0].revents) continue;
            const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            fds_.push_back(fd);
            std::lock_guard lock(mutex_);
            ++accepted_;
            changed_.notify_all();
        }
    });
}

Tarpit::~Tarpit() {
    (void)!::write(wake_[1], "x", 1);
    thread_.join();
    for (int fd : fds_)
        ::close(fd);
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
}

int Tarpit::accepted() const {
    std::lock_guard lock(mutex_);
    return accepted_;
}

bool Tarpit::wait_accepted(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return accepted_ >= n; });
}

int Tarpit::hung_up() const {
    std::lock_guard lock(mutex_);
    return hung_up_;
}

std::optional<Clock::time_point> Tarpit::last_hung_up_at() const {
    std::lock_guard lock(mutex_);
    return last_hung_up_at_;
}

bool Tarpit::wait_hung_up(int n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return hung_up_ >= n; });
}

// ------------------------------------------------------------------------------------------ relay

namespace {

int loopback_listener(std::uint16_t& port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
        ::listen(fd, 64) != 0)
        throw std::runtime_error("loopback listener failed");
    socklen_t size = sizeof(address);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
    port = ntohs(address.sin_port);
    return fd;
}

int connect_loopback(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) return fd;
    if (fd >= 0) ::close(fd);
    return -1;
}

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const auto n = ::send(fd, data, size, MSG_NOSIGNAL);
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

} // namespace

Relay::Relay(std::uint16_t target_port)
    : target_(target_port) {
    listen_fd_ = loopback_listener(port_);
    if (::pipe2(wake_, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    thread_ = std::thread([this] { serve(); });
}

void Relay::hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
}

void Relay::release() {
    {
        std::lock_guard lock(mutex_);
        held_ = false;
    }
    (void)!::write(wake_[1], "r", 1);
}

Relay::~Relay() {
    (void)!::write(wake_[1], "q", 1);
    thread_.join();
    ::close(listen_fd_);
    ::close(wake_[0]);
    ::close(wake_[1]);
}

int Relay::connections() const {
    std::lock_guard lock(mutex_);
    return connections_;
}

void Relay::serve() {
    std::vector<Pair> pairs;
    auto drop = [](Pair& p) {
        ::close(p.fd[0]);
        ::close(p.fd[1]);
        p.fd[0] = p.fd[1] = -1;
    };
    for (;;) {
        std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
        for (auto& p : pairs)
            for (int side = 0; side < 2; ++side)
                fds.push_back({p.eof[side] ? -1 : p.fd[side], POLLIN, 0});
        if (::poll(fds.data(), fds.size(), -1) < 0) continue;
        if (fds[0].revents) {
            char command = 0;
            if (::read(wake_[0], &command, 1) != 1 || command == 'q') break;
        }
        for (std::size_t i = 0; i < pairs.size(); ++i) {
            Pair& p = pairs[i];
            for (int side = 0; side < 2 && p.fd[0] >= 0; ++side) {
                if (!fds[2 + 2 * i + static_cast<std::size_t>(side)].revents) continue;
                char buffer[16384];
                const auto n = ::recv(p.fd[side], buffer, sizeof(buffer), 0);
                if (n < 0 || (n > 0 && !write_all(p.fd[1 - side], buffer, static_cast<std::size_t>(n)))) {
                    drop(p);
                } else if (n == 0) {
                    p.eof[side] = true; // pass the half-close on
                    ::shutdown(p.fd[1 - side], SHUT_WR);
                    if (p.eof[1 - side]) drop(p);
                }
            }
        }
        std::erase_if(pairs, [](const Pair& p) { return p.fd[0] < 0; });
        if (fds[1].revents) {
            const int in = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (in >= 0) {
                std::lock_guard lock(mutex_);
                ++connections_;
                parked_.push_back(in);
            }
        }
        bool forward = false;
        {
            std::lock_guard lock(mutex_);
            forward = !held_;
        }
        // A held relay keeps new connections at TCP: the dial through it is in flight until release().
        while (forward && !parked_.empty()) {
            const int in = parked_.front();
            parked_.erase(parked_.begin());
            const int out = connect_loopback(target_);
            if (out < 0) {
                ::close(in);
                continue;
            }
            // As transparent as a relay can be: without this, Nagle and delayed ACKs hold the small
            // handshake records for 40 ms at each hop.
            const int one = 1;
            ::setsockopt(in, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            ::setsockopt(out, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            pairs.push_back(Pair{{in, out}});
        }
    }
    for (int fd : parked_)
        ::close(fd);
    for (auto& p : pairs)
        drop(p);
}

} // namespace ship::hub::it
