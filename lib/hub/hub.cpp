#include "hub/hub.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <tuple>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <spdlog/spdlog.h>

#include "hub/address_list.hpp"
#include "net/listen_address.hpp"
#include "net/strand.hpp"
#include "ship/ski.hpp"
#include "util/log_context.hpp"

namespace ship::hub {

namespace {

// While a duplicate is held back, the peer may already talk (its CMI, hello): keep a few messages to replay.
constexpr std::size_t max_held_messages = 8;

std::string short_ski(std::string_view ski) {
    return std::string(ski.substr(0, 8));
}

Error error(ErrorCode code, std::string message) {
    return Error{code, std::move(message)};
}

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

// Whether a peer's new announcement changes what its record shows (D-Bus Peer object) or where we dial it.
bool announcement_changed(const DiscoveredService& before, const DiscoveredService& now) {
    auto shown = [](const DiscoveredService& d) {
        return std::tie(d.ship_id, d.brand, d.model, d.type, d.host, d.port, d.path, d.host_name,
                        d.addresses);
    };
    return shown(before) != shown(now);
}

std::uint64_t now_us() {
    using namespace std::chrono;
    return static_cast<std::uint64_t>(
        duration_cast<microseconds>(system_clock::now().time_since_epoch()).count());
}

} // namespace

// A dial on its way: holds the scheduler's ticket (the in-flight marker) until a WebSocket opens or every
// address failed. The peer's addresses are tried one after another (hub/address_list.hpp), never two at
// once: two links in flight to one peer are a double connection of our own making.
class Hub::DialAttempt final : public net::LinkHandler {
public:
    DialAttempt(Hub& hub, std::uint64_t attempt_id, std::vector<PeerAddress> to_try, DialTicket in_flight)
        : hub_(hub)
        , id(attempt_id)
        , candidates(std::move(to_try))
        , ticket(std::move(in_flight)) {}
    void on_open(net::Link&) override { hub_.dial_opened(self.lock()); }
    void on_message(net::Link&, std::vector<std::uint8_t> message) override {
        if (early.size() < max_held_messages) early.push_back(std::move(message));
    }
    void on_closed(net::Link&, const net::CloseInfo& info) override {
        spdlog::info("dial to {} at {} failed: {}", short_ski(ticket.ski()),
                     address.host + ":" + std::to_string(address.port),
                     info.reason.empty() ? describe(info) : info.reason);
        hub_.dial_link_failed(self.lock(), info);
    }

    Hub& hub_;
    std::uint64_t id;
    std::vector<PeerAddress> candidates; // in the order to try
    std::size_t next = 0;                // the next candidate to try
    PeerAddress address;                 // the one being tried
    DialTicket ticket;
    std::shared_ptr<net::Link> link; // the dial in flight, if any (none while a host name resolves)
    bool cancelled = false;
    std::weak_ptr<DialAttempt> self;
    std::vector<std::vector<std::uint8_t>> early;
};

// A WebSocket held back unbuilt while a double connection is in doubt (`contending`: no SME runs on it, the
// peer's first messages wait in `early`), or one we are closing without an SME. Keeps the Link alive until
// its close has gone out and been reported.
class Hub::HeldLink final : public net::LinkHandler {
public:
    HeldLink(Hub& hub, std::shared_ptr<net::Link> held, Direction dir)
        : hub_(hub)
        , link(std::move(held))
        , direction(dir) {}
    // An incoming one is held at admission, before its upgrade: it can be built only from now on.
    void on_open(net::Link& l) override {
        if (!contending) return;
        const std::string ski = l.peer_ski();
        hub_.contest(ski); // may replace this handler (and drop this object): nothing after it
    }
    void on_message(net::Link& l, std::vector<std::uint8_t> message) override {
        if (early.size() >= max_held_messages) {
            l.close(ship::close_code_ship, "too many messages while held back as a double connection");
            return;
        }
        early.push_back(std::move(message));
    }
    void on_closed(net::Link& l, const net::CloseInfo& info) override { hub_.held_ended(l.id(), info); }

    Hub& hub_;
    std::shared_ptr<net::Link> link;
    Direction direction;
    std::vector<std::vector<std::uint8_t>> early;
    bool contending = false;
    SteadyTime arrived = std::chrono::steady_clock::now();
    std::optional<PeerAddress> dialled_address; // outgoing: where our dial reached it
};

Hub::Hub(net::Strand& strand, HubConfig config, TrustStore trust)
    : strand_(strand)
    , config_(std::move(config))
    , trust_(std::move(trust))
    , rules_(trust_)
    , stop_(strand.stop_token())
    , timers_(strand)
    , closing_timers_(strand, net::Timer::Kind::shutdown)
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
                        if (auto owner = registry_.find(ski))
                            if (auto* c = dynamic_cast<PeerConnection*>(owner.get()))
                                return "SHIP state " + std::string(c->ship_state()) +
                                       (c->ship_state().find("pending") != std::string_view::npos
                                            ? ": waiting for a trust decision"
                                            : "");
                    if (!it->second.last_error.empty()) return "last error: " + it->second.last_error;
                    return "peer state " + std::string(to_string(it->second.state));
                })
    , resolver_([&strand](std::function<void()> fn) { return strand.post(std::move(fn)); }) {
    net::ClientConfig client;
    client.certificate_pem = config_.certificate_pem;
    client.private_key_pem = config_.private_key_pem;
    client.tls12_only = config_.tls12_only;
    client.link = config_.link;
    client.connect_timeout = config_.connect_timeout;
    client_ = std::make_unique<net::Client>(strand_, std::move(client));
    strand_.on_stop([this] { shutdown(); });
}

Hub::~Hub() {
    // Links first (they call back into handlers we own), then the rest in member order.
    connections_.clear();
    dial_attempts_.clear();
    held_links_.clear();
    servers_.clear();
    client_.reset();
}

void Hub::start() {
    std::vector<std::string> addresses = config_.listen_addresses;
    if (addresses.empty()) addresses.push_back(config_.listen_address);
    net::ServerConfig server;
    server.certificate_pem = config_.certificate_pem;
    server.private_key_pem = config_.private_key_pem;
    server.port = config_.port;
    server.tls12_only = config_.tls12_only;
    server.link = config_.link;
    server.admit = [this](const std::shared_ptr<net::Link>& link) { return admit(link); };
    server.refuse_in_tls = [this](const std::string& ski, const std::string& remote) {
        return refuse_in_tls(ski, remote);
    };
    server.on_handshake_failed = [](const net::HandshakeFailure& failure) {
        // An empty address: the peer had already hung up (getpeername fails), e.g. a dial it abandoned.
        spdlog::warn("TLS handshake from {} refused: {}",
                     failure.remote_address.empty() ? "a peer already gone" : failure.remote_address,
                     failure.reason);
    };
    for (const auto& address : addresses) {
        server.listen_address = address;
        // Port 0 picks one for the first address; the others share it, so the Port property is the port.
        if (!servers_.empty()) server.port = servers_.front()->port();
        servers_.push_back(std::make_unique<net::Server>(strand_, server));
    }
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
    return servers_.empty() ? config_.port : servers_.front()->port();
}

std::vector<std::string> Hub::listen_addresses() const {
    std::vector<std::string> out;
    for (const auto& server : servers_)
        out.push_back(server->address());
    return out;
}

// ---------------------------------------------------------------------------------------------- accepting

net::Admission Hub::admit(const std::shared_ptr<net::Link>& link) {
    if (stopping_) return net::Admission::refuse("shutting down");
    const std::string& ski = link->peer_ski();
    const util::LogScope scope(ski); // what follows decides about this one peer
    // Normally refused inside TLS already (refuse_in_tls); a block set during its handshake lands here.
    if (trust_.is_blocked(ski)) return net::Admission::refuse("SHIP: this SKI is blocked", 403);
    // Untrusted peers have a budget of their own and never count below: they cannot keep a trusted one out.
    if (untrusted_peer(*link)) {
        if (auto refused = admit_untrusted(link)) return *refused;
    } else if (trusted_connections() >= config_.max_connections) {
        spdlog::warn("refused SHIP connection from {} ({}): {} connections is the limit",
                     link->remote_address(), short_ski(ski), config_.max_connections);
        return net::Admission::refuse("too many connections");
    } else if (trusted_handshakes() >= config_.max_handshakes) {
        spdlog::warn("refused SHIP connection from {} ({}): {} handshakes in progress is the limit",
                     link->remote_address(), short_ski(ski), config_.max_handshakes);
        return net::Admission::refuse("too many SHIP handshakes in progress");
    }
    auto owner = registry_.find(ski);
    auto* registered = owner ? dynamic_cast<PeerConnection*>(owner.get()) : nullptr;
    if (registered && registered->in_data_exchange()) {
        // Never replaced by one that is not further along; refused before the upgrade, so no stack counts it
        // as a connection. A peer that rebooted dials again while its old link still looks open here: that
        // one must answer a ping at once, or it is dropped and the peer's next dial gets through.
        spdlog::info("refused SHIP connection from {} ({}): double connection, the one in data exchange is "
                     "kept; asking it for a sign of life",
                     link->remote_address(), short_ski(ski));
        registered->probe(config_.probe_bound);
        return net::Admission::refuse("double connection");
    }
    if (registered || scheduler_.is_dialling(ski) || has_contending(ski)) {
        // Two links to one peer: decide now only if the peer's rule lets us (a sure loser is refused before
        // the upgrade); otherwise hold this one, unbuilt, while the peer's own decision can still come.
        const auto verdict = judge(config_.local_ski, ski, config_.rule, rules_.learned(ski),
                                   contest_view(ski, ContestLink{link->id(), Direction::incoming,
                                                                 std::chrono::steady_clock::now(), false}),
                                   std::chrono::steady_clock::now(), contest_times_);
        if ((verdict.kind == Judgement::Kind::keep_link && verdict.link != link->id()) ||
            verdict.kind == Judgement::Kind::keep_dial) {
            spdlog::info("refused SHIP connection from {} ({}): double connection, {}",
                         link->remote_address(), short_ski(ski), verdict.why);
            if (doubts_.contains(ski)) contest(ski);
            return net::Admission::refuse("double connection");
        }
        spdlog::info("SHIP {} incoming: double connection ({}); holding it back", short_ski(ski),
                     verdict.kind == Judgement::Kind::wait ? verdict.why : "it wins once upgraded");
        auto held = hold_contending(link, Direction::incoming);
        return net::Admission::accept(*held);
    }
    auto connection = offer(link, Direction::incoming, {}, false);
    if (!connection) return net::Admission::refuse(stopping_ ? "shutting down" : "double connection");
    return net::Admission::accept(*connection);
}

std::shared_ptr<PeerConnection> Hub::offer(const std::shared_ptr<net::Link>& link, Direction direction,
                                           std::vector<std::vector<std::uint8_t>> early, bool wait_over,
                                           std::optional<SteadyTime> arrived) {
    const std::string ski = link->peer_ski();
    const util::LogScope scope(ski);
    std::shared_ptr<PeerConnection> built;
    auto result = registry_.swap(
        ski, direction,
        [&]() -> Registry::Handle {
            PeerConnectionOwner& owner = *this;
            built = std::make_shared<PeerConnection>(closing_timers_, owner, link, direction, sme_config(ski));
            if (arrived) built->set_arrived(*arrived);
            return built;
        },
        wait_over);
    if (result.stopping || result.decision == Decision::keep_existing) {
        if (link->is_open()) {
            // Exactly one owner closes the loser: this holder, until the close is reported.
            auto closing = std::make_shared<HeldLink>(*this, link, direction);
            link->set_handler(closing.get());
            held_links_[link->id()] = closing;
            link->close(ship::close_code_ship, result.stopping ? "shutting down" : double_connection_reason);
        }
        return nullptr;
    }
    if (result.decision == Decision::defer) {
        // The peer (larger SKI) decides: held like any double connection, judged on the next turn.
        spdlog::info("SHIP {} {}: double connection, the peer has the larger SKI; holding this one back",
                     short_ski(ski), to_string(direction));
        auto held = hold_contending(link, direction);
        held->early = std::move(early);
        if (arrived) held->arrived = *arrived;
        timers_.schedule(std::chrono::milliseconds(0), [this, ski] { contest(ski); });
        return nullptr;
    }
    connections_[link->id()] = built;
    handshaking_ids_.insert(link->id());
    pairing_registered(*built);
    spdlog::info("SHIP {} {} from {} registered{}", short_ski(ski), to_string(direction),
                 link->remote_address(), result.evicted ? " (replaces the previous connection)" : "");
    if (result.lost_connected) {
        auto& rec = record(ski);
        rec.connected = false;
        rec.connected_since_us = 0;
        if (events_) events_->peer_disconnected(ski, "replaced by a newer connection");
    }
    if (result.evicted) close_as_double_connection(*result.evicted);
    record(ski);
    publish(ski);
    if (link->is_open()) built->start(std::move(early));
    return built;
}

void Hub::held_ended(std::uint64_t link_id, const net::CloseInfo& info) {
    auto node = held_links_.extract(link_id);
    if (!node.empty() && node.mapped()->contending) {
        const auto& held = *node.mapped();
        const std::string ski = held.link->peer_ski();
        if (doubts_.contains(ski)) {
            learn_from_close(ski, held.direction, info, !held.early.empty());
            contest(ski);
        }
    }
    maybe_finish();
}

// ---------------------------------------------------------------------------------------------- double
// connections

std::shared_ptr<Hub::HeldLink> Hub::hold_contending(const std::shared_ptr<net::Link>& link,
                                                    Direction direction) {
    auto held = std::make_shared<HeldLink>(*this, link, direction);
    held->contending = true;
    link->set_handler(held.get());
    held_links_[link->id()] = held;
    begin_doubt(link->peer_ski());
    return held;
}

bool Hub::has_contending(const std::string& ski) const {
    for (const auto& [id, h] : held_links_)
        if (h->contending && h->link->peer_ski() == ski) return true;
    return false;
}

void Hub::begin_doubt(const std::string& ski) {
    auto [it, fresh] = doubts_.try_emplace(ski, Doubt{std::chrono::steady_clock::now()});
    // The registered one waits too: it must not reach data exchange only to be dropped by the peer.
    if (auto owner = registry_.find(ski))
        if (auto* c = dynamic_cast<PeerConnection*>(owner.get()); c && !c->in_data_exchange()) c->pause();
    if (fresh) {
        const auto learned = rules_.learned(ski);
        spdlog::info("SHIP {}: double connection; the peer's rule is {}", short_ski(ski),
                     learned ? std::string(to_string(*learned)) : std::string("not known yet"));
    }
}

void Hub::close_held(const std::string& ski, std::uint16_t code, std::string_view reason) {
    std::vector<std::shared_ptr<HeldLink>> held;
    for (const auto& [id, h] : held_links_)
        if (h->contending && h->link->peer_ski() == ski) held.push_back(h);
    for (auto& h : held) {
        h->contending = false; // a closing holder now, until its close is reported
        h->link->close(code, reason);
    }
    end_doubt(ski);
}

void Hub::end_doubt(const std::string& ski) {
    auto it = doubts_.find(ski);
    if (it == doubts_.end()) return;
    if (it->second.timer) timers_.cancel(it->second.timer);
    doubts_.erase(it);
}

Contest Hub::contest_view(const std::string& ski, std::optional<ContestLink> extra) const {
    Contest view;
    const auto doubt = doubts_.find(ski);
    view.since = doubt != doubts_.end() ? doubt->second.since : std::chrono::steady_clock::now();
    if (auto owner = registry_.find(ski))
        if (const auto* c = dynamic_cast<const PeerConnection*>(owner.get()))
            view.links.push_back({c->id(), c->direction(), c->arrived(), c->in_data_exchange()});
    for (const auto& [id, h] : held_links_)
        if (h->contending && h->link->peer_ski() == ski)
            view.links.push_back({id, h->direction, h->arrived, false});
    if (extra) view.links.push_back(*extra);
    view.dial_in_flight = scheduler_.is_dialling(ski);
    return view;
}

void Hub::contest(const std::string& ski) {
    auto doubt = doubts_.find(ski);
    if (doubt == doubts_.end() || stopping_) return;
    const util::LogScope scope(ski);
    const auto now = std::chrono::steady_clock::now();
    const auto learned = rules_.learned(ski);
    const auto view = contest_view(ski, std::nullopt);
    const auto verdict = judge(config_.local_ski, ski, config_.rule, learned, view, now, contest_times_);

    if (verdict.kind == Judgement::Kind::wait) {
        Doubt& d = doubt->second;
        if (d.timer && d.until == verdict.until) return;
        if (d.timer) timers_.cancel(d.timer);
        d.until = verdict.until;
        const auto delay = std::max(std::chrono::milliseconds(0),
                                    std::chrono::ceil<std::chrono::milliseconds>(verdict.until - now));
        d.timer = timers_.schedule(delay, [this, ski] {
            if (auto it = doubts_.find(ski); it != doubts_.end()) it->second.timer = 0;
            contest(ski);
        });
        return;
    }

    std::shared_ptr<HeldLink> winner;
    if (verdict.kind == Judgement::Kind::keep_link) {
        if (auto it = held_links_.find(verdict.link); it != held_links_.end()) {
            // Being admitted: it opens in a moment, and HeldLink::on_open judges again.
            if (!it->second->link->is_open()) return;
            winner = it->second;
        }
    }
    if (!learned && verdict.peer_waited && rules_.learn(ski, DoubleConnectionRule::spec, [this, ski] {
            trust_.when_durable([ski](const std::optional<std::string>& error) {
                if (error)
                    spdlog::error("could not store how {} settles double connections: {}", short_ski(ski),
                                  *error);
            });
        }))
        spdlog::info("SHIP {}: the peer left the double connection to us; taken as the spec rule",
                     short_ski(ski));
    end_doubt(ski);
    if (verdict.kind == Judgement::Kind::nothing) {
        // Every link went: dial again as after any lost connection (a dial in flight goes on).
        if (trust_.is_trusted(ski)) scheduler_.request(ski);
        return;
    }

    spdlog::info("SHIP {}: double connection settled: {} ({})", short_ski(ski),
                 verdict.kind == Judgement::Kind::keep_dial ? std::string("our dial in flight")
                 : winner ? std::string(to_string(winner->direction)) + " link (held back)"
                          : std::string("the registered link"),
                 verdict.why);
    // Losers first, so that the registry sees no alive owner when the winner is offered.
    if (auto owner = registry_.find(ski)) {
        auto* c = dynamic_cast<PeerConnection*>(owner.get());
        if (verdict.kind == Judgement::Kind::keep_link && !winner && c && c->id() == verdict.link)
            c->resume();
        else
            close_as_double_connection(*owner);
    }
    std::vector<std::shared_ptr<HeldLink>> losers;
    for (const auto& [id, h] : held_links_)
        if (h->contending && h->link->peer_ski() == ski && h != winner) losers.push_back(h);
    for (auto& h : losers) {
        h->contending = false; // a closing holder now, until its close is reported
        h->link->close(ship::close_code_ship, double_connection_reason);
    }
    if (verdict.kind == Judgement::Kind::keep_link && scheduler_.is_dialling(ski))
        scheduler_.cancel_dial(ski);
    if (!winner) return;
    held_links_.erase(winner->link->id());
    winner->contending = false;
    if (auto connection =
            offer(winner->link, winner->direction, std::move(winner->early), false, winner->arrived))
        connection->dialled_address = winner->dialled_address;
}

void Hub::learn_from_close(const std::string& ski, Direction closed, const net::CloseInfo& info,
                           bool peer_spoke) {
    if (info.by == net::CloseInfo::By::local) return; // our own decision says nothing about the peer's
    const Direction other = closed == Direction::incoming ? Direction::outgoing : Direction::incoming;
    bool other_present = other == Direction::outgoing && scheduler_.is_dialling(ski);
    for (const auto& link : contest_view(ski, std::nullopt).links)
        other_present = other_present || link.direction == other;
    PeerClose close{closed, other_present,
                    classify_close(info.by == net::CloseInfo::By::peer, info.code, info.reason), peer_spoke};
    const auto rule = learn_rule(config_.local_ski, ski, close);
    if (!rule) return;
    if (rules_.learn(ski, *rule, [this, ski] {
            trust_.when_durable([ski](const std::optional<std::string>& error) {
                if (error)
                    spdlog::error("could not store how {} settles double connections: {}", short_ski(ski),
                                  *error);
            });
        }))
        spdlog::info(
            "SHIP {}: the peer closed our {} link of a double connection ({}): it applies the {} rule",
            short_ski(ski), to_string(closed), describe(info), to_string(*rule));
}

// ---------------------------------------------------------------------------------------------- dialling

std::function<void()> Hub::dial(const std::string& ski, const PeerAddress& address, DialTicket ticket) {
    if (stopping_) return {};
    auto candidates = dial_candidates(ski);
    if (candidates.empty()) candidates.push_back(address);
    auto attempt =
        std::make_shared<DialAttempt>(*this, ++last_attempt_id_, std::move(candidates), std::move(ticket));
    attempt->self = attempt;
    dial_attempts_[attempt->id] = attempt;
    if (!dial_next(attempt)) {
        dial_attempts_.erase(attempt->id);
        return {}; // the ticket ends with the attempt: the next one is scheduled
    }
    std::weak_ptr<DialAttempt> weak = attempt;
    return [this, weak] {
        auto a = weak.lock();
        if (!a || a->cancelled) return;
        a->cancelled = true;
        if (a->link) {
            a->link->close(ship::close_code_ship, "dial cancelled");
        } else {
            // A host name is being resolved: the attempt ends now, its late result is dropped. On a later
            // turn, not inside the scheduler's cancel.
            timers_.schedule(std::chrono::milliseconds(0), [this, id = a->id] { dial_attempt_over(id); });
        }
    };
}

std::vector<PeerAddress> Hub::dial_candidates(const std::string& ski) const {
    std::optional<Announced> announced;
    if (auto it = discovered_.find(ski); it != discovered_.end()) {
        const auto& d = it->second;
        Announced a;
        a.addresses = d.addresses;
        a.host_name = d.host_name;
        // A producer that fills only `host` (an older caller, a test) announces that one address or name.
        if (a.addresses.empty() && a.host_name.empty()) {
            if (is_numeric_host(d.host))
                a.addresses.push_back(d.host);
            else
                a.host_name = d.host;
        }
        a.port = d.port;
        a.path = d.path.empty() ? "/ship/" : d.path;
        announced = std::move(a);
    }
    const auto* peer = trust_.find(ski);
    // While a Connect waits, its address alone: the outcome it reports is that address's. Otherwise the
    // announced and stored ones; an address that never worked only when there is nothing else.
    if (auto asked = connects_.address(ski)) return {*asked};
    auto order = dial_order(announced, peer ? peer->address : std::nullopt);
    if (order.empty())
        if (auto it = unproven_addresses_.find(ski); it != unproven_addresses_.end())
            order.push_back(it->second);
    return order;
}

bool Hub::dial_next(const std::shared_ptr<DialAttempt>& attempt) {
    const std::string ski = attempt->ticket.ski();
    while (attempt->next < attempt->candidates.size() && !attempt->cancelled && !stopping_) {
        const PeerAddress candidate = attempt->candidates[attempt->next++];
        attempt->address = candidate;
        if (!is_numeric_host(candidate.host)) {
            // Resolved off the strand; the attempt (and its ticket) stays in flight meanwhile.
            spdlog::debug("dialling {}: resolving {}", short_ski(ski), candidate.host);
            std::weak_ptr<DialAttempt> weak = attempt;
            resolver_.resolve(candidate.host, [this, weak, candidate](std::vector<std::string> addresses,
                                                                      std::string error) {
                auto a = weak.lock();
                if (!a || a->cancelled || stopping_ || !dial_attempts_.contains(a->id)) return;
                if (addresses.empty()) {
                    const std::string& peer_ski = a->ticket.ski();
                    const util::LogScope scope(peer_ski);
                    // Like a refused dial: on the bus (LastError, State) and to a Connect that asked for it.
                    report_failure(peer_ski,
                                   "dial to " + net::display_listen_address(candidate.host, candidate.port) +
                                       " failed: " + candidate.host + " does not resolve: " + error,
                                   false, candidate);
                }
                std::vector<PeerAddress> tried(a->candidates.begin(),
                                               a->candidates.begin() + static_cast<long>(a->next));
                auto more = resolved_candidates(candidate, addresses, tried);
                a->candidates.insert(a->candidates.begin() + static_cast<long>(a->next), more.begin(),
                                     more.end());
                if (!dial_next(a)) dial_attempt_over(a->id);
            });
            return true;
        }
        net::DialRequest request;
        request.host = candidate.host;
        request.port = candidate.port;
        request.path = candidate.path.empty() ? "/ship/" : candidate.path;
        request.expected_ski = ski;
        attempt->early.clear();
        attempt->link = client_->dial(request, *attempt);
        if (attempt->link) {
            spdlog::debug("dialling {} at {}:{}{}", short_ski(ski), candidate.host, candidate.port,
                          request.path);
            return true;
        }
    }
    return false;
}

void Hub::dial_link_failed(const std::shared_ptr<DialAttempt>& attempt, const net::CloseInfo& info) {
    if (!attempt) return;
    attempt->link.reset();
    // Our own cancels (an incoming connection won, untrust, stop) are no failure to report.
    if (!attempt->cancelled && !stopping_ && info.by != net::CloseInfo::By::local) {
        const std::string& ski = attempt->ticket.ski();
        const util::LogScope scope(ski);
        report_failure(ski,
                       "dial to " +
                           net::display_listen_address(attempt->address.host, attempt->address.port) +
                           " failed: " + (info.reason.empty() ? describe(info) : info.reason),
                       info.timed_out, attempt->address);
    }
    // Refused by the peer itself (HTTP 503: it holds a connection to us, or its limits): another address of
    // the same peer would hear the same.
    const bool refused = info.reason.find("HTTP 503") != std::string::npos;
    if (attempt->cancelled || stopping_ || refused || !dial_next(attempt)) dial_attempt_over(attempt->id);
}

void Hub::dial_attempt_over(std::uint64_t id) {
    auto node = dial_attempts_.extract(id);
    const std::string ski = node.empty() ? std::string() : node.mapped()->ticket.ski();
    node = {}; // drops the ticket: a failed attempt, the next is scheduled
    if (!ski.empty() && doubts_.contains(ski)) contest(ski);
    maybe_finish();
}

void Hub::dial_opened(const std::shared_ptr<DialAttempt>& attempt) {
    if (!attempt) return;
    auto link = attempt->link;
    auto keep = dial_attempts_.extract(attempt->id);
    const std::string ski = link->peer_ski();
    if (!attempt->ticket.connected()) {
        auto closing = std::make_shared<HeldLink>(*this, link, Direction::outgoing);
        link->set_handler(closing.get());
        held_links_[link->id()] = closing;
        link->close(ship::close_code_ship, stopping_ ? "shutting down" : "dial no longer wanted");
    } else if (registry_.is_connected(ski) || has_contending(ski)) {
        // The peer has another link to us: ours is held back like theirs until the double connection is
        // settled (the peer may have refused or kept it already; its decision arrives within a round trip).
        spdlog::info("SHIP {} outgoing: double connection; holding it back", short_ski(ski));
        auto held = hold_contending(link, Direction::outgoing);
        held->early = std::move(attempt->early);
        held->dialled_address = attempt->address;
    } else if (auto connection = offer(link, Direction::outgoing, std::move(attempt->early), false)) {
        connection->dialled_address = attempt->address;
    }
    if (doubts_.contains(ski)) contest(ski); // our dial has resolved
}

void Hub::report_failure(const std::string& ski, const std::string& text, bool is_timeout,
                         const std::optional<PeerAddress>& dialled) {
    auto& rec = record(ski);
    rec.last_error = text;
    rec.last_error_time_us = now_us();
    if (!registry_.contains(ski) && rec.state != PeerState::error) {
        rec.state = PeerState::error;
        rec.error = text;
        if (events_) events_->peer_state_changed(ski, rec.state, rec.error);
    } else if (!registry_.contains(ski) && rec.error != text) {
        rec.error = text;
        if (events_) events_->peer_state_changed(ski, rec.state, rec.error);
    }
    publish(ski);
    if (!connects_.pending(ski)) return;
    const auto asked = connects_.address(ski);
    if (!asked || (dialled && *dialled == *asked)) {
        if (asked) unproven_addresses_[ski] = *asked; // kept for retries only while nothing else is known
        connects_.finish(ski, Error{is_timeout ? ErrorCode::timeout : ErrorCode::connect_failed, text});
        forget_if_unknown(ski);
    } else if (!stopping_) {
        // That was an older dial to another address: now the one the Connect asked for.
        scheduler_.request_now(ski);
    }
}

// ---------------------------------------------------------------------------------------------- connections

ship::ConnectionConfig Hub::sme_config(const std::string& ski) const {
    ship::ConnectionConfig c;
    c.own_ship_id = config_.ship_id;
    c.peer_trusted = trust_.is_trusted(ski) || config_.auto_accept;
    c.allow_waiting_for_trust = config_.wait_for_trust;
    if (const auto* peer = trust_.find(ski); peer && !peer->ship_id.empty())
        c.known_peer_ship_id = peer->ship_id;
    c.timers = config_.ship_timers;
    return c;
}

bool Hub::is_owner(const PeerConnection& connection) const {
    return registry_.find(connection.ski()).get() == &connection;
}

void Hub::on_state(PeerConnection& connection, PeerState state, const std::string& error) {
    if (!is_owner(connection)) return;
    auto& rec = record(connection.ski());
    rec.state = state;
    rec.error = error;
    if (events_) events_->peer_state_changed(connection.ski(), state, error);
    publish(connection.ski());
    // The SME took the peer's trust when the connection was built: a Trust (or auto-accept) that came after
    // that but before hello found nothing pending to approve, and the hello now waits for a user who has
    // already said yes. Approve it, on a later turn rather than inside the SME's own run of actions.
    if (state == PeerState::received_pairing_request &&
        (trust_.is_trusted(connection.ski()) || config_.auto_accept))
        timers_.schedule(std::chrono::milliseconds(0), [this, ski = connection.ski(), id = connection.id()] {
            if (stopping_ || !(trust_.is_trusted(ski) || config_.auto_accept)) return;
            auto it = connections_.find(id);
            if (it == connections_.end() || !is_owner(*it->second) || !it->second->awaiting_trust()) return;
            spdlog::info("SHIP {}: trusted before its hello; approving it now", short_ski(ski));
            approve_pending(*it->second,
                            trust_.is_trusted(ski) ? "approved by Trust" : "approved by AutoAccept");
        });
    pairing_state(connection, state);
}

void Hub::on_ship_id(PeerConnection& connection, const std::string& ship_id) {
    if (!is_owner(connection)) return;
    const auto& ski = connection.ski();
    if (trust_.set_ship_id(ski, ship_id))
        trust_.when_durable([ski](const std::optional<std::string>& error) {
            if (error) spdlog::error("could not store the SHIP ID of {}: {}", short_ski(ski), *error);
        });
    auto& rec = record(ski);
    if (rec.ship_id == ship_id) return;
    rec.ship_id = ship_id;
    if (events_) events_->peer_ship_id_changed(ski, ship_id);
    publish(ski);
}

void Hub::on_completed(PeerConnection& connection) {
    const auto& ski = connection.ski();
    handshaking_ids_.erase(connection.id());
    if (!registry_.confirm_connected(ski, connection)) return;
    scheduler_.handshake_completed(ski);
    bool stored = false;
    if (!trust_.is_trusted(ski) && config_.auto_accept) {
        spdlog::info("SHIP {}: trusted by auto-accept", short_ski(ski));
        stored = trust_.trust(ski, record(ski).ship_id);
    }
    if (connection.dialled_address) stored = trust_.set_address(ski, *connection.dialled_address) || stored;
    unproven_addresses_.erase(ski);
    // The write runs on the disk writer; the strand goes on serving meanwhile.
    if (stored)
        trust_.when_durable([ski](const std::optional<std::string>& error) {
            if (error) spdlog::error("could not update the trust store for {}: {}", short_ski(ski), *error);
        });
    auto& rec = record(ski);
    rec.connected = true;
    rec.connected_since_us = now_us();
    spdlog::info("SHIP {} connected ({}, {})", short_ski(ski), to_string(connection.direction()),
                 connection.link().remote_address());
    if (events_) events_->peer_connected(ski);
    publish(ski);
    connects_.finish(ski, std::nullopt);
}

void Hub::on_data(PeerConnection& connection, const std::string& json) {
    if (!is_owner(connection)) return;
    if (events_) events_->data_received(connection.ski(), json);
    publish(connection.ski()); // MessagesIn, BytesIn (the D-Bus side sends one PropertiesChanged per turn)
}

void Hub::on_ended(PeerConnection& connection, const net::CloseInfo& info) {
    auto keep = connections_.extract(connection.id()); // `connection` lives until this function returns
    handshaking_ids_.erase(connection.id());
    const std::string ski = connection.ski();
    const std::string how = connection.end_description(describe(info));
    pairing_ended(connection, info);
    // At stop, one line per peer would be thousands; "stopping: closing N connection(s)" says it once.
    spdlog::log(stopping_ ? spdlog::level::debug : spdlog::level::info, "SHIP {} {} ended in {}: {}",
                short_ski(ski), to_string(connection.direction()), connection.ship_state(), how);
    const auto removal = registry_.remove_if_matches(ski, connection);
    if (removal.owned) {
        auto& rec = record(ski);
        if (removal.was_connected) {
            rec.connected = false;
            rec.connected_since_us = 0;
            if (events_) events_->peer_disconnected(ski, how);
        }
        const bool keep_state =
            connection.state() == PeerState::error || connection.state() == PeerState::remote_denied_trust;
        const PeerState next = keep_state ? connection.state() : PeerState::none;
        if (rec.state != next) {
            rec.state = next;
            rec.error = keep_state ? connection.error() : std::string();
            if (events_) events_->peer_state_changed(ski, rec.state, rec.error);
        }
        if (connection.state() == PeerState::error) {
            rec.last_error = connection.error();
            rec.last_error_time_us = now_us();
        }
        publish(ski);
        if (doubts_.contains(ski)) {
            learn_from_close(ski, connection.direction(), info, connection.peer_spoke());
            contest(ski);
        }
        // A Connect waiting for the handshake this dial of ours started learns how it ended.
        if (!stopping_ && !removal.was_connected && connects_.pending(ski) &&
            connection.direction() == Direction::outgoing) {
            const auto asked = connects_.address(ski);
            if (!asked || (connection.dialled_address && *connection.dialled_address == *asked)) {
                if (asked) unproven_addresses_[ski] = *asked;
                connects_.finish(ski, Error{ErrorCode::connect_failed,
                                            "the SHIP handshake with " + ski + " failed: " +
                                                (connection.error().empty() ? how : connection.error())});
            }
        }
        if (!stopping_ && trust_.is_trusted(ski) && !registry_.is_connected(ski)) {
            if (connects_.pending(ski))
                scheduler_.request_now(ski);
            else
                scheduler_.request(ski);
        }
        forget_if_unknown(ski);
    }
    maybe_finish();
}

std::optional<PeerAddress> Hub::address_for(const std::string& ski) const {
    auto candidates = dial_candidates(ski);
    if (candidates.empty()) return std::nullopt;
    return candidates.front();
}

// ---------------------------------------------------------------------------------------------- peers

PeerInfo& Hub::record(const std::string& ski) {
    auto [it, inserted] = peers_.try_emplace(ski);
    if (inserted) it->second.ski = ski;
    return it->second;
}

void Hub::refresh_record(const std::string& ski) {
    auto& rec = record(ski);
    rec.trusted = trust_.is_trusted(ski);
    if (const auto* peer = trust_.find(ski)) {
        if (rec.ship_id.empty()) rec.ship_id = peer->ship_id;
        // The stored address, also when it changed (a Connect to a new one reached data exchange).
        if (peer->address) {
            rec.host = peer->address->host;
            rec.port = peer->address->port;
        }
    }
    if (auto it = discovered_.find(ski); it != discovered_.end()) {
        const auto& d = it->second;
        if (rec.ship_id.empty()) rec.ship_id = d.ship_id;
        rec.brand = d.brand;
        rec.model = d.model;
        rec.type = d.type;
        if (!d.host.empty()) {
            rec.host = d.host;
            rec.port = d.port;
        }
    }
    rec.blocked = trust_.is_blocked(ski);
    if (auto owner = registry_.find(ski)) {
        if (auto* c = dynamic_cast<PeerConnection*>(owner.get())) {
            // Who is asking: an incoming peer's address is where its connection comes from (from the first
            // byte on), whatever it announces over mDNS.
            if (c->direction() == Direction::incoming)
                if (auto [host, port] = split_host_port(c->link().remote_address()); !host.empty()) {
                    rec.host = std::move(host);
                    rec.port = port;
                }
            const auto& s = c->stats();
            rec.messages_in = s.messages_in;
            rec.messages_out = s.messages_out;
            rec.bytes_in = s.bytes_in;
            rec.bytes_out = s.bytes_out;
        }
    }
}

void Hub::publish(const std::string& ski) {
    refresh_record(ski);
    if (events_) events_->peer_changed(record(ski));
}

void Hub::forget_if_unknown(const std::string& ski) {
    if (trust_.is_trusted(ski) || trust_.is_blocked(ski) || discovered_.contains(ski) ||
        registry_.contains(ski) || connects_.pending(ski))
        return;
    if (peers_.erase(ski) && events_) events_->peer_removed(ski);
}

std::vector<PeerInfo> Hub::list_peers() const {
    std::vector<PeerInfo> out;
    for (const auto& [ski, rec] : peers_) {
        PeerInfo info = rec;
        info.trusted = trust_.is_trusted(ski);
        if (auto owner = registry_.find(ski))
            if (auto* c = dynamic_cast<PeerConnection*>(owner.get())) {
                info.messages_in = c->stats().messages_in;
                info.messages_out = c->stats().messages_out;
                info.bytes_in = c->stats().bytes_in;
                info.bytes_out = c->stats().bytes_out;
            }
        out.push_back(std::move(info));
    }
    return out;
}

std::optional<PeerInfo> Hub::peer(std::string_view ski) const {
    const auto n = ship::normalize_ski(ski);
    if (!n) return std::nullopt;
    for (auto& info : list_peers())
        if (info.ski == *n) return info;
    return std::nullopt;
}

std::vector<DiscoveredService> Hub::list_discovered() const {
    std::vector<DiscoveredService> out;
    for (const auto& [ski, d] : discovered_)
        out.push_back(d);
    return out;
}

void Hub::set_discovered(std::vector<DiscoveredService> services) {
    std::map<std::string, DiscoveredService, std::less<>> next;
    for (auto& s : services)
        if (s.ski != config_.local_ski) next.emplace(s.ski, std::move(s));
    auto previous = std::move(discovered_);
    discovered_ = std::move(next);
    for (const auto& [ski, d] : discovered_) {
        auto it = previous.find(ski);
        if (it != previous.end() && !announcement_changed(it->second, d)) continue;
        record(ski);
        publish(ski);
        if (trust_.is_trusted(ski) && !registry_.is_connected(ski)) scheduler_.request(ski);
    }
    for (const auto& [ski, d] : previous)
        if (!discovered_.contains(ski)) forget_if_unknown(ski);
    if (events_) events_->discovered_changed();
}

// ---------------------------------------------------------------------------------------------- commands

void Hub::set_auto_accept(bool on) {
    if (config_.auto_accept == on) return;
    config_.auto_accept = on;
    if (config_.on_auto_accept_changed) config_.on_auto_accept_changed(on);
    if (on) approve_all_pending("approved by AutoAccept");
}

namespace {
// Normalises a user-given SKI into `ski`, or says which value was wrong and why.
Result parse_ski(std::string_view input, std::string& ski) {
    if (auto n = ship::normalize_ski(input)) {
        ski = std::move(*n);
        return std::nullopt;
    }
    return error(ErrorCode::invalid_ski,
                 "'" + std::string(input) +
                     "' is not a SKI: expected 40 hexadecimal digits (spaces and '-' allowed)");
}
} // namespace

Result Hub::trust(std::string_view input) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    if (ski == config_.local_ski)
        return error(ErrorCode::invalid_argument, "SKI " + ski + " is this node's own");
    if (trust_.is_blocked(ski))
        return error(ErrorCode::blocked, "peer " + ski + " is blocked: unblock it first (Blocked = false)");
    trust_.trust(ski, peers_.contains(ski) ? peers_.at(ski).ship_id : std::string());
    pairing_.forgive(ski);
    spdlog::info("SHIP {}: trusted by the user", short_ski(ski));
    if (auto* c = pending_connection(ski)) approve_pending(*c, "approved by Trust");
    record(ski);
    publish(ski);
    scheduler_.request_now(ski);
    return std::nullopt;
}

Result Hub::untrust(std::string_view input) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    const bool was_trusted = trust_.is_trusted(ski);
    if (!was_trusted && !registry_.contains(ski))
        return error(ErrorCode::not_trusted, "peer " + ski + " is not trusted");
    trust_.untrust(ski);
    spdlog::info("SHIP {}: trust removed by the user", short_ski(ski));
    scheduler_.forget(ski);
    unproven_addresses_.erase(ski);
    connects_.finish(ski,
                     error(ErrorCode::not_trusted, "peer " + ski + " was untrusted before it connected"));
    if (auto owner = registry_.find(ski))
        if (auto* c = dynamic_cast<PeerConnection*>(owner.get())) c->remove_trust();
    end_doubt(ski);
    for (const auto& [id, h] : held_links_)
        if (h->contending && h->link->peer_ski() == ski) {
            h->contending = false;
            h->link->close(ship::close_code_trust_removed, "trust removed");
        }
    publish(ski);
    forget_if_unknown(ski);
    return std::nullopt;
}

Result Hub::connect(std::string_view input, std::string_view host, std::uint16_t port) {
    if (host.empty()) return error(ErrorCode::invalid_argument, "host is empty");
    return connect_and_report(input, host, port, {});
}

Result Hub::connect_and_report(std::string_view input, std::string_view host, std::uint16_t port,
                               ConnectDone done) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    if (!trust_.is_trusted(ski))
        return error(ErrorCode::not_trusted, "peer " + ski + " is not trusted: call Trust first");
    if (trust_.is_blocked(ski))
        return error(ErrorCode::blocked, "peer " + ski + " is blocked: unblock it first (Blocked = false)");
    std::optional<PeerAddress> asked;
    if (!host.empty() || port != 0) {
        if (host.empty()) return error(ErrorCode::invalid_argument, "host is empty");
        if (port == 0) return error(ErrorCode::invalid_argument, "port 0 is not a port to dial");
        asked = PeerAddress{std::string(host), port, "/ship/"};
    }
    if (registry_.is_connected(ski)) {
        // Already in data exchange: that is the outcome asked for (the given address is not dialled).
        if (done)
            timers_.schedule(std::chrono::milliseconds(0), [done = std::move(done)] { done(std::nullopt); });
        return std::nullopt;
    }
    if (!asked && !address_for(ski))
        return error(ErrorCode::invalid_argument,
                     "no address is known for peer " + ski + ": give one (org.shipd.Hub1.Connect)");
    spdlog::info("SHIP {}: connect requested{}", short_ski(ski),
                 asked ? " to " + net::display_listen_address(asked->host, asked->port) : std::string());
    connects_.add(ski, asked, std::move(done));
    record(ski);
    publish(ski);
    if (scheduler_.is_dialling(ski)) return std::nullopt; // its end (or success) decides what comes next
    scheduler_.request_now(ski);
    return std::nullopt;
}

Result Hub::disconnect(std::string_view input, std::string_view reason) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    auto owner = registry_.find(ski);
    if (!owner) return error(ErrorCode::not_connected, "peer " + ski + " is not connected");
    owner->close(ship::close_code_ship, reason.empty() ? "disconnected by the user" : reason);
    return std::nullopt;
}

Result Hub::cancel_pairing(std::string_view input) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    auto owner = registry_.find(ski);
    auto* c = owner ? dynamic_cast<PeerConnection*>(owner.get()) : nullptr;
    const bool pending = c && c->awaiting_trust();
    if (!pending && !trust_.is_trusted(ski))
        return error(ErrorCode::unknown_peer, "no pairing with " + ski + " is pending");
    if (pending) deny_pending(*c, "denied by CancelPairing", true);
    if (trust_.is_trusted(ski)) {
        if (auto r = untrust(ski)) return r;
    }
    return std::nullopt;
}

Result Hub::send_data(std::string_view input, std::string_view json) {
    std::string ski;
    if (auto e = parse_ski(input, ski)) return e;
    if (stopping_) return error(ErrorCode::shutting_down, "shipd is shutting down");
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    if (doc.HasParseError())
        return error(ErrorCode::invalid_json, std::string("not valid JSON: ") +
                                                  rapidjson::GetParseError_En(doc.GetParseError()) +
                                                  " at offset " + std::to_string(doc.GetErrorOffset()));
    // The shape the peer's SPINE stack expects; anything else would only be dropped (or worse) there.
    const auto shape = [](const std::string& what) {
        return error(ErrorCode::invalid_json,
                     "a SPINE message is {\"datagram\":{\"header\":{...},\"payload\":{...}}}: " + what);
    };
    if (!doc.IsObject()) return shape("the root is not an object");
    const auto datagram = doc.FindMember("datagram");
    if (datagram == doc.MemberEnd()) return shape("the root has no \"datagram\"");
    if (doc.MemberCount() != 1) return shape("the root has members besides \"datagram\"");
    if (!datagram->value.IsObject()) return shape("\"datagram\" is not an object");
    for (const char* part : {"header", "payload"}) {
        const auto member = datagram->value.FindMember(part);
        if (member == datagram->value.MemberEnd())
            return shape("\"datagram\" has no \"" + std::string(part) + "\"");
        if (!member->value.IsObject()) return shape("\"" + std::string(part) + "\" is not an object");
    }
    auto owner = registry_.find(ski);
    auto* c = owner ? dynamic_cast<PeerConnection*>(owner.get()) : nullptr;
    if (!c || !registry_.is_confirmed(ski) || !c->in_data_exchange())
        return error(ErrorCode::not_connected, "peer " + ski + " is not connected");
    if (auto e = c->send_data(json)) return e;
    publish(ski); // MessagesOut, BytesOut
    return std::nullopt;
}

void Hub::when_persisted(std::function<void(Result)> done) {
    trust_.when_durable([done = std::move(done)](const std::optional<std::string>& failure) {
        if (!failure) return done(std::nullopt);
        done(error(ErrorCode::invalid_argument, "could not store the change on disk: " + *failure));
    });
}

// ---------------------------------------------------------------------------------------------- stop

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
    if (stopping_ && connections_.empty() && dial_attempts_.empty() && held_links_.empty()) strand_.finish();
}

} // namespace ship::hub
