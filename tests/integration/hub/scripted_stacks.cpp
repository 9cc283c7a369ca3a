#include "scripted_stacks.hpp"

#include <algorithm>
#include <future>
#include <optional>
#include <stdexcept>

#include "net/server.hpp"
#include "net/timer.hpp"

namespace ship::hub::it {

const char* to_string(Stack stack) {
    return stack == Stack::shipgo_v06 ? "ship-go v0.6" : "OpenEEBUS";
}

// One WebSocket of the scripted node, with its own SME once the stack registered it.
class StackPeer::Link final : public net::LinkHandler, public std::enable_shared_from_this<Link> {
public:
    Link(StackPeer& node, Direction dir)
        : node_(node)
        , direction(dir) {}

    void on_open(net::Link&) override { node_.opened(shared_from_this()); }
    void on_message(net::Link&, std::vector<std::uint8_t> message) override {
        if (!sme) return; // not registered: what a stack does not read
        sme->receive(message, Clock::now());
        run_actions();
    }
    void on_closed(net::Link&, const net::CloseInfo& info) override {
        auto self = shared_from_this();
        closed = true;
        node_.closed(self, info);
    }

    void start() {
        ship::ConnectionConfig config;
        config.own_ship_id = std::string("scripted-") + (node_.stack_ == Stack::openeebus ? "oe" : "go");
        config.peer_trusted = true; // both stacks trust the one peer they were configured with
        sme.emplace(std::move(config));
        sme->open(direction == Direction::outgoing ? ship::Role::client : ship::Role::server, Clock::now());
        run_actions();
    }

    void run_actions() {
        for (auto& action : sme->take_actions()) {
            if (auto* send = std::get_if<ship::action::Send>(&action)) {
                link->send(send->bytes);
            } else if (auto* close = std::get_if<ship::action::CloseTransport>(&action)) {
                link->close(close->code, close->reason);
            } else if (std::holds_alternative<ship::action::Completed>(action)) {
                in_data_exchange = true;
                node_.completed(*this);
            } else if (auto* d = std::get_if<ship::action::DataReceived>(&action)) {
                node_.data(*this, d->json);
            }
        }
    }

    StackPeer& node_;
    Direction direction;
    std::shared_ptr<net::Link> link;
    std::optional<ship::Connection> sme;
    bool in_data_exchange = false;
    bool closed = false;
};

StackPeer::StackPeer(Stack stack, tls::Identity identity)
    : stack_(stack)
    , identity_(std::move(identity)) {
    strand_ = std::make_unique<net::Strand>(stop_.get_token());
    net::ServerConfig server;
    server.certificate_pem = identity_.certificate_pem;
    server.private_key_pem = identity_.private_key_pem;
    server.listen_address = "127.0.0.1";
    // Both stacks answer the upgrade of any trusted peer and decide only once it is done.
    server.admit = [this](const std::shared_ptr<net::Link>& l) {
        if (l->peer_ski() != remote_ski_) return net::Admission::refuse("unknown SKI");
        auto link = std::make_shared<Link>(*this, Direction::incoming);
        link->link = l;
        links_.push_back(link);
        return net::Admission::accept(*link);
    };
    server_ = std::make_unique<net::Server>(*strand_, std::move(server));
    port_ = server_->port();
    net::ClientConfig client;
    client.certificate_pem = identity_.certificate_pem;
    client.private_key_pem = identity_.private_key_pem;
    client.connect_timeout = std::chrono::milliseconds(5000);
    client_ = std::make_unique<net::Client>(*strand_, std::move(client));
    thread_ = std::thread([this] { strand_->run(); });
}

StackPeer::~StackPeer() {
    stop_.request_stop();
    thread_.join();
    // Parked strand (contract 5): links, then timers and endpoints, then the strand.
    registered_.reset();
    links_.clear();
    timers_.clear();
    client_.reset();
    server_.reset();
    strand_.reset();
}

template <typename F>
auto StackPeer::call(F&& fn) -> decltype(fn()) {
    using R = decltype(fn());
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(fn));
    auto result = task->get_future();
    if (!strand_->post([task] { (*task)(); })) throw std::runtime_error("scripted peer: strand is stopping");
    if (result.wait_for(deadline) != std::future_status::ready)
        watchdog_abort("scripted peer: the strand did not run a call within the deadline");
    return result.get();
}

template <typename F>
void StackPeer::update(F&& change) {
    std::lock_guard lock(mutex_);
    change(stats_);
    changed_.notify_all();
}

void StackPeer::trust(const std::string& remote_ski, std::uint16_t remote_port) {
    call([&] {
        remote_ski_ = remote_ski;
        remote_port_ = remote_port;
    });
}

void StackPeer::dial_at(Clock::time_point when) {
    call([&] {
        auto timer = std::make_unique<net::Timer>(*strand_);
        const auto delay = std::max(Clock::duration::zero(), when - Clock::now());
        timer->start(std::chrono::duration_cast<std::chrono::microseconds>(delay), [this] { dial(); });
        timers_.push_back(std::move(timer));
    });
}

void StackPeer::dial() {
    // ship-go v0.6 dials only a SKI it has not registered; OpenEEBUS only while no attempt runs.
    if (registered_) return;
    if (stack_ == Stack::openeebus) {
        if (attempt_running_) return;
        attempt_running_ = true;
    }
    auto link = std::make_shared<Link>(*this, Direction::outgoing);
    net::DialRequest request;
    request.host = "127.0.0.1";
    request.port = remote_port_;
    request.path = "/ship/";
    request.expected_ski = remote_ski_;
    link->link = client_->dial(request, *link);
    if (!link->link) return;
    links_.push_back(link);
    update([](Stats& s) { ++s.dials; });
}

void StackPeer::opened(const std::shared_ptr<Link>& link) {
    const bool incoming = link->direction == Direction::incoming;
    if (stack_ == Stack::openeebus) {
        // First come: an incoming link is refused right after the upgrade (LWS_CALLBACK_ESTABLISHED returns
        // -1: no close frame) while its own attempt runs or a connection exists; it never drops one it has.
        if (incoming) {
            if (attempt_running_ || registered_) {
                link->link->abort("OpenEEBUS: a connection attempt is running");
                update([](Stats& s) { ++s.refused; });
                return;
            }
            attempt_running_ = true;
            update([](Stats& s) { ++s.accepted; });
        }
        registered_ = link;
        link->start();
        return;
    }
    // ship-go v0.6 keepThisConnection: decided only if a connection is registered; the survivor is the link
    // the larger SKI dialled, old or new.
    if (registered_) {
        const bool keep_new = incoming ? remote_ski_ > identity_.ski : identity_.ski > remote_ski_;
        if (!keep_new) {
            // The new one loses: as client a close frame 1000 "double connection"; as server the frame is
            // raced by conn.Close() and usually lost.
            if (incoming)
                link->link->abort("ship-go: double connection");
            else
                link->link->close(net::close_normal, "double connection");
            update([](Stats& s) { ++s.refused; });
            return;
        }
        // The new one wins: the registered one is closed without a close frame or connectionClose.
        auto old = std::exchange(registered_, nullptr);
        old->link->abort("ship-go: closing existing double connection");
        update([](Stats& s) { ++s.dropped; });
    }
    if (incoming) update([](Stats& s) { ++s.accepted; });
    registered_ = link;
    link->start();
}

void StackPeer::closed(const std::shared_ptr<Link>& link, const net::CloseInfo&) {
    std::erase(links_, link);
    const bool was_registered = registered_ == link;
    if (was_registered) registered_.reset();
    // OpenEEBUS clears its attempt flag when its connection (or its dial) ends.
    if (stack_ == Stack::openeebus &&
        (was_registered || (link->direction == Direction::outgoing && !link->sme)))
        attempt_running_ = false;
    update([&](Stats& s) {
        if (was_registered && link->in_data_exchange) ++s.lost_connected;
        if (was_registered) s.in_data_exchange = false;
    });
}

void StackPeer::completed(Link& link) {
    if (registered_.get() != &link) return;
    update([](Stats& s) {
        ++s.connected;
        s.in_data_exchange = true;
    });
}

void StackPeer::data(Link& link, const std::string& json) {
    if (registered_.get() != &link) return;
    update([&](Stats& s) { s.data.push_back(json); });
}

bool StackPeer::send_data(const std::string& json) {
    return call([&] {
        if (!registered_ || !registered_->in_data_exchange || registered_->sme->send_data(json)) return false;
        registered_->run_actions();
        return true;
    });
}

StackPeer::Stats StackPeer::stats() {
    std::lock_guard lock(mutex_);
    return stats_;
}

bool StackPeer::wait(const std::function<bool(const Stats&)>& predicate, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return predicate(stats_); });
}

} // namespace ship::hub::it
