#include "hub/peer_connection.hpp"

#include <spdlog/spdlog.h>

#include "ship/messages.hpp"
#include "ship/ski.hpp"
#include "util/log_context.hpp"

namespace ship::hub {

namespace {
ship::Role role_of(Direction direction) {
    return direction == Direction::outgoing ? ship::Role::client : ship::Role::server;
}
// A peer waiting for our answer sends one or two messages (CMI, hello); more while paused is a flood.
constexpr std::size_t max_queued_messages = 8;
} // namespace

PeerConnection::PeerConnection(TimerService& clock, PeerConnectionOwner& owner,
                               std::shared_ptr<net::Link> link, Direction direction,
                               ship::ConnectionConfig config)
    : ConnectionHandle(link->peer_ski(), direction)
    , owner_(owner)
    , link_(std::move(link))
    , sme_(std::move(config))
    , clock_(clock)
    , arrived_(clock.now()) {
    link_->set_handler(this);
}

PeerConnection::~PeerConnection() {
    if (deadline_timer_) clock_.cancel(deadline_timer_);
    if (link_) link_->set_handler(nullptr);
}

void PeerConnection::start(std::vector<std::vector<std::uint8_t>> early) {
    if (started_ || ended_) return;
    started_ = true;
    sme_.open(role_of(direction()), clock_.now());
    run_actions();
    for (auto& message : early) {
        if (ended_ || sme_.closed()) break;
        on_message(*link_, std::move(message));
    }
}

void PeerConnection::approve() {
    sme_.approve(clock_.now());
    run_actions();
}

void PeerConnection::deny(std::string_view reason) {
    if (!begin_close()) return;
    if (closed_by_us_.empty())
        closed_by_us_ = reason.empty() ? "pairing cancelled by the user" : std::string(reason);
    sme_.deny(clock_.now(), reason);
    run_actions();
}

void PeerConnection::remove_trust() {
    if (!begin_close()) return;
    if (closed_by_us_.empty()) closed_by_us_ = "trust removed";
    sme_.remove_trust(clock_.now());
    run_actions();
}

std::optional<Error> PeerConnection::send_data(ship::Bytes message, std::size_t json_bytes) {
    const std::size_t size = message.size();
    if (size > max_ship_message_bytes)
        return Error{ErrorCode::invalid_argument,
                     "the SHIP message would be " + std::to_string(size) + " bytes (from " +
                         std::to_string(json_bytes) + " bytes of JSON), more than the " +
                         std::to_string(max_ship_message_bytes) +
                         " bytes (100 KiB) a SHIP peer accepts: nothing was sent"};
    if (auto error = sme_.send_data_message(std::move(message)))
        return Error{ErrorCode::not_connected, *error};
    ++stats_.messages_out;
    stats_.bytes_out += size;
    run_actions();
    return std::nullopt;
}

std::optional<Error> PeerConnection::send_data(std::string_view json) {
    auto encoded = ship::msg::encode_spine_datagram(json);
    if (const auto* e = std::get_if<ship::msg::EncodeError>(&encoded))
        return Error{ErrorCode::invalid_json, e->reason};
    return send_data(std::move(std::get<ship::Bytes>(encoded)), json.size());
}

std::string PeerConnection::end_description(const std::string& fallback) const {
    if (!closed_by_peer_.empty()) return "closed by the peer: " + closed_by_peer_;
    if (!closed_by_us_.empty()) return "closed by us: " + closed_by_us_;
    return fallback;
}

void PeerConnection::do_close(std::uint16_t code, std::string_view reason) {
    if (closed_by_us_.empty()) closed_by_us_ = std::string(reason);
    if (!started_) {
        // Never ran the SME (a held-back duplicate): the WebSocket close says it all.
        link_->close(code, reason);
        return;
    }
    sme_.close(reason, clock_.now());
    run_actions();
}

void PeerConnection::do_leave(std::string_view reason, bool closing) {
    leaving_ = true;
    if (closed_by_us_.empty() && closed_by_peer_.empty()) closed_by_us_ = std::string(reason);
    if (!started_ || ended_ || (closing && sme_.closed())) {
        if (!closing) link_->close(ship::close_code_ship, reason); // a held-back duplicate: the close frame
        return;
    }
    announced_ = sme_.in_data_exchange() || sme_.state_name() == "close-wait-confirm";
    sme_.leave(reason);
    run_actions();
}

void PeerConnection::on_open(net::Link&) {
    start();
}

void PeerConnection::on_message(net::Link&, std::vector<std::uint8_t> message) {
    if (!started_ || ended_) return;
    spoke_ = true;
    if (paused_) {
        if (queued_.size() >= max_queued_messages) {
            link_->close(ship::close_code_ship, "too many messages while a double connection is decided");
            return;
        }
        queued_.push_back(std::move(message));
        return;
    }
    deliver(std::move(message));
}

void PeerConnection::deliver(std::vector<std::uint8_t> message) {
    receiving_bytes_ = message.size();
    sme_.receive(message, clock_.now());
    run_actions();
}

void PeerConnection::pause() {
    if (ended_ || sme_.closed()) return;
    paused_ = true;
}

void PeerConnection::resume() {
    if (!paused_) return;
    paused_ = false;
    auto waiting = std::move(queued_);
    queued_.clear();
    for (std::size_t i = 0; i < waiting.size(); ++i) {
        if (ended_ || sme_.closed()) return;
        if (paused_) { // paused again by what the SME did: the rest waits once more
            queued_.insert(queued_.begin(), std::make_move_iterator(waiting.begin() + static_cast<long>(i)),
                           std::make_move_iterator(waiting.end()));
            return;
        }
        deliver(std::move(waiting[i]));
    }
}

void PeerConnection::on_closed(net::Link&, const net::CloseInfo& closed) {
    if (ended_) return;
    const util::LogScope scope(ski(), to_string(state_));
    const net::CloseInfo info = closed; // the owner may drop the Link (and what `closed` refers to)
    ended_ = true;
    begin_close(); // whoever started it, the close has happened: nobody closes this connection again
    if (deadline_timer_) clock_.cancel(std::exchange(deadline_timer_, 0));
    armed_for_.reset();
    if (started_ && !sme_.closed()) {
        sme_.transport_closed(info.reason.empty() ? std::string(net::to_string(info.by)) + " closed"
                                                  : info.reason);
        run_actions();
    }
    owner_.on_ended(*this, info); // may drop the last reference to this object: nothing after it
}

// After every call into the SME: the strand timer follows its one next deadline. Re-scheduling only when the
// deadline moved keeps data messages from re-inserting the timer into lws' sorted list each time.
void PeerConnection::arm_deadline() {
    const auto deadline = ended_ ? std::nullopt : sme_.next_deadline();
    if (deadline == armed_for_) return;
    armed_for_ = deadline;
    if (deadline_timer_) clock_.cancel(std::exchange(deadline_timer_, 0));
    if (!deadline) return;
    // Rounded up: the timer must not wake before the deadline (handle_timeout would then do nothing).
    const auto delay = std::max(std::chrono::milliseconds(0),
                                std::chrono::ceil<std::chrono::milliseconds>(*deadline - clock_.now()));
    deadline_timer_ = clock_.schedule(delay, [this] {
        deadline_timer_ = 0;
        armed_for_.reset(); // it ran: whatever the SME says next must be scheduled again
        if (ended_) return;
        sme_.handle_timeout(clock_.now());
        run_actions();
    });
}

void PeerConnection::run_actions() {
    // Everything logged while this connection's actions run (here and in the owner) is about this peer.
    util::LogScope scope(ski(), to_string(state_));
    for (auto& action : sme_.take_actions()) {
        scope.set_state(to_string(state_));
        if (ended_) {
            // The socket is gone; only the terminal bookkeeping still matters.
            if (auto* state = std::get_if<action::StateChanged>(&action)) {
                state_ = state->state;
                error_ = state->error;
            }
            continue;
        }
        std::visit(
            [this](auto& a) {
                using A = std::decay_t<decltype(a)>;
                if constexpr (std::is_same_v<A, action::Send>) {
                    link_->send(a.bytes);
                } else if constexpr (std::is_same_v<A, action::CloseTransport>) {
                    begin_close();
                    if (!a.peer_request.empty() && closed_by_us_.empty() && closed_by_peer_.empty())
                        closed_by_peer_ = a.peer_request;
                    else if (closed_by_us_.empty() && closed_by_peer_.empty())
                        closed_by_us_ = a.reason; // the SME's own decision (timeout, protocol error)
                    // At stop one line per peer would be thousands: the stop's own line says it.
                    spdlog::log(leaving_ ? spdlog::level::debug : spdlog::level::info,
                                "SHIP {} {}: closing WebSocket {} \"{}\" in {}", short_ski(ski()),
                                to_string(direction()), a.code, a.reason, sme_.state_name());
                    if (leaving_ && announced_)
                        link_->close_at_once(a.code, a.reason);
                    else
                        link_->close(a.code, a.reason);
                } else if constexpr (std::is_same_v<A, action::StateChanged>) {
                    state_ = a.state;
                    error_ = a.error;
                    owner_.on_state(*this, a.state, a.error);
                } else if constexpr (std::is_same_v<A, action::ShipIdLearned>) {
                    owner_.on_ship_id(*this, a.ship_id);
                } else if constexpr (std::is_same_v<A, action::DataReceived>) {
                    ++stats_.messages_in;
                    stats_.bytes_in += receiving_bytes_;
                    owner_.on_data(*this, a.json);
                } else if constexpr (std::is_same_v<A, action::Completed>) {
                    owner_.on_completed(*this);
                } else if constexpr (std::is_same_v<A, action::Closed>) {
                    spdlog::debug("SHIP {}: SME closed: {}", short_ski(ski()), a.reason);
                } else if constexpr (std::is_same_v<A, action::Notice>) {
                    spdlog::info("SHIP {}: ignored peer input in {}: {}", short_ski(ski()), sme_.state_name(),
                                 a.text);
                }
            },
            action);
    }
    arm_deadline();
}

} // namespace ship::hub
