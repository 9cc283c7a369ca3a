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
    , events_(events)
    , deadline_timer_(strand, Timer::Kind::shutdown) {
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
    ended_ = true;
    arm_deadline(); // cancels it: nothing runs for a session whose socket is gone
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
    sme_.deny(now());
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
    sme_.close(reason, now());
    apply();
}

void ShipSession::remove_trust() {
    SHIP_NET_ASSERT_ON_STRAND(strand_.core());
    sme_.remove_trust(now());
    apply();
}

// After every SME call. Re-scheduled only when the deadline moved (data messages leave it alone).
void ShipSession::arm_deadline() {
    const auto deadline = ended_ ? std::nullopt : sme_.next_deadline();
    if (deadline == armed_for_) return;
    armed_for_ = deadline;
    if (!deadline) return deadline_timer_.cancel();
    // Rounded up so it never wakes before the deadline, where handle_timeout would do nothing.
    deadline_timer_.start(std::chrono::ceil<std::chrono::microseconds>(*deadline - now()), [this] {
        armed_for_.reset(); // it ran: the next deadline must be scheduled afresh
        sme_.handle_timeout(now());
        apply();
    });
}

void ShipSession::apply() {
    for (auto& action : sme_.take_actions()) {
        std::visit(Overloaded{
                       [&](ship::action::Send& a) { link_->send(a.bytes); },
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
    arm_deadline();
}

} // namespace ship::net
