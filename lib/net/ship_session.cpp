#include "net/ship_session.hpp"

#include <chrono>
#include <type_traits>

#include <spdlog/spdlog.h>

#include "net/detail.hpp"
#include "net/strand.hpp"

namespace ship::net {

namespace {

ship::TimePoint now() {
    return std::chrono::steady_clock::now();
}

template <class... Ts>
struct Overloaded : Ts... {
    using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

} // namespace

ShipSession::ShipSession(Strand& strand, std::shared_ptr<Link> link, ship::ConnectionConfig config,
                         ShipSessionEvents& events)
    : strand_(strand)
    , link_(std::move(link))
    , sme_(std::move(config))
    , events_(events) {
    SHIP_NET_ASSERT_ON_STRAND(strand_.core());
    link_->set_handler(this);
    if (link_->is_open()) on_open(*link_);
}

ShipSession::~ShipSession() {
    if (link_) link_->set_handler(nullptr);
    // The Timers and the Link go with us; ~Link cuts a socket that is still up.
}

void ShipSession::on_open(Link&) {
    if (started_) return;
    started_ = true;
    sme_.open(link_->role(), now());
    apply();
}

void ShipSession::on_message(Link&, std::vector<std::uint8_t> message) {
    sme_.receive(message, now());
    apply();
}

void ShipSession::on_closed(Link&, const CloseInfo& info) {
    if (!sme_.closed()) {
        sme_.transport_closed(info.reason.empty() ? "WebSocket closed " + std::to_string(info.code)
                                                  : info.reason);
        apply();
    }
    for (auto& [kind, t] : timers_)
        t->cancel();
    ended_ = true;
    if (ship_reason_.empty()) ship_reason_ = info.reason;
    events_.on_ended(*this, ship_reason_, info); // last: the owner may drop us here
}

void ShipSession::approve() {
    SHIP_NET_ASSERT_ON_STRAND(strand_.core());
    sme_.approve(now());
    apply();
}

void ShipSession::deny() {
    SHIP_NET_ASSERT_ON_STRAND(strand_.core());
    sme_.deny();
    apply();
}

std::optional<std::string> ShipSession::send_data(std::string_view plain_json) {
    SHIP_NET_ASSERT_ON_STRAND(strand_.core());
    auto error = sme_.send_data(plain_json);
    apply();
    return error;
}

void ShipSession::close(std::string_view reason) {
    SHIP_NET_ASSERT_ON_STRAND(strand_.core());
    if (!started_) {
        link_->close(ship::close_code_ship, reason); // never opened: nothing for SHIP to say yet
        return;
    }
    sme_.close(reason);
    apply();
}

void ShipSession::remove_trust() {
    SHIP_NET_ASSERT_ON_STRAND(strand_.core());
    sme_.remove_trust();
    apply();
}

Timer& ShipSession::timer(ship::TimerKind kind) {
    auto& slot = timers_[kind];
    if (!slot) {
        // The close timer bounds a polite close, which is exactly what runs during shutdown.
        const auto timer_kind = kind == ship::TimerKind::close ? Timer::Kind::shutdown : Timer::Kind::normal;
        slot = std::make_unique<Timer>(strand_, timer_kind);
    }
    return *slot;
}

void ShipSession::apply() {
    for (auto& action : sme_.take_actions()) {
        std::visit(Overloaded{
                       [&](ship::action::Send& a) { link_->send(a.bytes); },
                       [&](ship::action::ArmTimer& a) {
                           const auto kind = a.kind;
                           timer(kind).start(a.after, [this, kind] {
                               sme_.timer_fired(kind, now());
                               apply();
                           });
                       },
                       [&](ship::action::CancelTimer& a) {
                           if (auto it = timers_.find(a.kind); it != timers_.end()) it->second->cancel();
                       },
                       [&](ship::action::CloseTransport& a) { link_->close(a.code, a.reason); },
                       [&](ship::action::StateChanged& a) { events_.on_state(*this, a.state, a.error); },
                       [&](ship::action::ShipIdLearned& a) { events_.on_ship_id(*this, a.ship_id); },
                       [&](ship::action::DataReceived& a) { events_.on_data(*this, a.json); },
                       [&](ship::action::Completed&) { events_.on_completed(*this); },
                       [&](ship::action::Closed& a) { ship_reason_ = a.reason; },
                       [&](ship::action::Notice& a) {
                           spdlog::debug("SHIP {} (SKI {}): {}", link_->remote_address(), link_->peer_ski(),
                                         a.text);
                       },
                   },
                   action);
    }
}

} // namespace ship::net
