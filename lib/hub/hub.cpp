// The Hub made, started and stopped; its other work is in hub_<part>.cpp, one file per concern (hub.hpp).
#include "hub/hub_internal.hpp"

namespace ship::hub {

std::string describe(const net::CloseInfo& info) {
    std::string text;
    switch (info.by) {
    case net::CloseInfo::By::local:
        text = "closed by us";
        break;
    case net::CloseInfo::By::peer:
        text = "closed by the peer";
        break;
    case net::CloseInfo::By::transport:
        text = "connection lost";
        break;
    }
    text += " (" + std::to_string(info.code);
    if (!info.reason.empty()) text += " " + info.reason;
    return text + ")";
}

std::uint64_t now_us() {
    using namespace std::chrono;
    return static_cast<std::uint64_t>(
        duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

Hub::Hub(HubLoop& loop, Network& network, HubConfig config, TrustStore trust)
    : loop_(loop)
    , network_(network)
    , config_(std::move(config))
    , trust_(std::move(trust))
    , rules_(trust_)
    , stop_(loop.stop_token())
    , timers_(loop.timers())
    , closing_timers_(loop.closing_timers())
    , random_(config_.random_seed ? SeededRandom(*config_.random_seed) : SeededRandom::from_entropy())
    , registry_(config_.local_ski, config_.rule, stop_)
    , scheduler_(
          timers_, random_, stop_,
          DialScheduler::Hooks{[this](const std::string& ski) {
                                   // A link held back in a double connection counts: the peer has just
                                   // dialled us.
                                   return !stopping_ && trust_.is_trusted(ski) && !trust_.is_blocked(ski) &&
                                          !registry_.is_connected(ski) && !has_contending(ski);
                               },
                               [this](const std::string& ski) { return address_for(ski); },
                               [this](const std::string& ski, const PeerAddress& address, DialTicket ticket) {
                                   return dial(ski, address, std::move(ticket));
                               }})
    , pairing_(timers_, config_.pairing, [this](const PairingBook::Entry& entry) { pairing_expired(entry); })
    , contest_times_{config_.verdict_wait, config_.passive_wait}
    , connects_(timers_, config_.connect_wait,
                [this](const std::string& ski) {
                    // How far the peer got, for a Connect that timed out.
                    auto it = peers_.find(ski);
                    if (it == peers_.end()) return std::string();
                    if (it->second.state == PeerState::received_pairing_request ||
                        it->second.state == PeerState::none)
                        if (auto* c = owner_of(ski))
                            return "SHIP state " + std::string(c->ship_state()) +
                                   (c->ship_state().find("pending") != std::string_view::npos
                                        ? ": waiting for a trust decision"
                                        : "");
                    if (!it->second.last_error.empty()) return "last error: " + it->second.last_error;
                    return "peer state " + std::string(to_string(it->second.state));
                })
    , resolver_([&loop](std::function<void()> fn) { return loop.post(std::move(fn)); }) {
    loop_.on_stop([this] { shutdown(); });
}

Hub::~Hub() {
    // Links first (they call back into handlers we own), then the rest in member order.
    connections_.clear();
    dial_attempts_.clear();
    held_links_.clear();
    network_.release();
}

void Hub::start() {
    ListenHooks hooks;
    hooks.admit = [this](const std::shared_ptr<net::Link>& link) { return admit(link); };
    hooks.refuse_in_tls = [this](const std::string& ski, const std::string& remote) {
        return refuse_in_tls(ski, remote);
    };
    hooks.on_handshake_failed = [](const net::HandshakeFailure& failure) {
        // An empty address: the peer had already hung up (getpeername fails), e.g. a dial it abandoned.
        spdlog::warn("TLS handshake from {} refused: {}",
                     failure.remote_address.empty() ? "a peer already gone" : failure.remote_address,
                     failure.reason);
    };
    network_.listen(std::move(hooks));
    std::string bound;
    for (const auto& a : listen_addresses())
        bound += (bound.empty() ? "" : ", ") + a;
    spdlog::info("listening for SHIP on {} as SKI {}", bound, config_.local_ski);
    for (const auto& peer : trust_.peers()) {
        record(peer.ski);
        publish(peer.ski);
        scheduler_.request(peer.ski);
    }
    for (const auto& ski : trust_.blocked()) { // so that an app can see, and lift, the block
        record(ski);
        publish(ski);
    }
}

std::uint16_t Hub::port() const {
    return network_.port();
}

std::vector<std::string> Hub::listen_addresses() const {
    return network_.addresses();
}

void Hub::shutdown() {
    if (stopping_) return;
    stopping_ = true;
    spdlog::info("stopping: closing {} connection(s), cancelling {} dial(s)", connections_.size(),
                 scheduler_.in_flight());
    scheduler_.shutdown();
    connects_.finish_all(error(ErrorCode::shutting_down, "shipd is shutting down"));
    // Dials waiting for a host name have no link to close: they end here (their cancel's timer would not run
    // after stop, and a late lookup result is dropped).
    for (auto it = dial_attempts_.begin(); it != dial_attempts_.end();)
        it = it->second->link ? std::next(it) : dial_attempts_.erase(it);
    for (auto& [ski, doubt] : doubts_)
        if (doubt.timer) timers_.cancel(doubt.timer);
    doubts_.clear();
    for (const auto& [id, h] : held_links_)
        if (h->contending) {
            h->contending = false;
            h->link->close(ship::close_code_ship, "shutting down");
        }
    for (auto& released : registry_.take_all()) {
        if (released.was_connected && events_)
            events_->peer_disconnected(released.connection->ski(), "shutting down");
        released.connection->leave("shutting down");
    }
    // Connections that were no longer registered (closing, or never the owner) stop waiting for answers too.
    std::vector<std::shared_ptr<PeerConnection>> rest;
    for (const auto& [id, c] : connections_)
        rest.push_back(c);
    for (const auto& c : rest)
        c->leave("shutting down");
    maybe_finish();
}

void Hub::maybe_finish() {
    if (stopping_ && connections_.empty() && dial_attempts_.empty() && held_links_.empty()) loop_.finish();
}

} // namespace ship::hub
