#include "harness.hpp"

#include <catch2/catch.hpp>

#include "vectors.hpp"

namespace ship::test {

ConnectionConfig trusted_config(std::string own_ship_id) {
    ConnectionConfig c;
    c.own_ship_id = std::move(own_ship_id);
    c.peer_trusted = true;
    return c;
}

ConnectionConfig pending_config(std::string own_ship_id) {
    auto c = trusted_config(std::move(own_ship_id));
    c.peer_trusted = false;
    c.allow_waiting_for_trust = true;
    return c;
}

Harness::Harness(ConnectionConfig config)
    : conn(std::move(config)) {}

void Harness::pump() {
    for (auto& a : conn.take_actions()) {
        if (closed_count > 0) acted_after_closed = true;
        std::visit(
            [this](const auto& x) {
                using T = std::decay_t<decltype(x)>;
                if constexpr (std::is_same_v<T, action::Send>) {
                    sent.push_back(x.bytes);
                } else if constexpr (std::is_same_v<T, action::ArmTimer>) {
                    timers[x.kind] = now + x.after;
                } else if constexpr (std::is_same_v<T, action::CancelTimer>) {
                    timers.erase(x.kind);
                } else if constexpr (std::is_same_v<T, action::CloseTransport>) {
                    close = x;
                } else if constexpr (std::is_same_v<T, action::StateChanged>) {
                    states.push_back(x);
                } else if constexpr (std::is_same_v<T, action::ShipIdLearned>) {
                    ship_ids.push_back(x.ship_id);
                } else if constexpr (std::is_same_v<T, action::DataReceived>) {
                    data.push_back(x.json);
                } else if constexpr (std::is_same_v<T, action::Completed>) {
                    ++completed;
                } else if constexpr (std::is_same_v<T, action::Closed>) {
                    ++closed_count;
                    closed_reason = x.reason;
                } else if constexpr (std::is_same_v<T, action::Notice>) {
                    notices.push_back(x.text);
                }
            },
            a);
        log.push_back(std::move(a));
    }
}

void Harness::open(Role role) {
    conn.open(role, now);
    pump();
}

void Harness::receive(const Bytes& bytes) {
    conn.receive(bytes, now);
    pump();
}

void Harness::receive(MessageType type, std::string_view json) {
    receive(make_frame(type, json));
}

void Harness::approve() {
    conn.approve(now);
    pump();
}

void Harness::advance(Duration d) {
    const TimePoint target = now + d;
    for (;;) {
        auto next = timers.end();
        for (auto it = timers.begin(); it != timers.end(); ++it)
            if (it->second <= target && (next == timers.end() || it->second < next->second)) next = it;
        if (next == timers.end()) break;
        const TimerKind kind = next->first;
        now = next->second;
        timers.erase(next);
        conn.timer_fired(kind, now);
        pump();
    }
    now = target;
}

std::vector<Bytes> Harness::take_sent() {
    std::vector<Bytes> out(sent.begin() + static_cast<std::ptrdiff_t>(sent_seen_), sent.end());
    sent_seen_ = sent.size();
    return out;
}

std::optional<Duration> Harness::timer_left(TimerKind kind) const {
    const auto it = timers.find(kind);
    if (it == timers.end()) return std::nullopt;
    return std::chrono::duration_cast<Duration>(it->second - now);
}

std::optional<PeerState> Harness::last_state() const {
    if (states.empty()) return std::nullopt;
    return states.back().state;
}

std::string Harness::last_error() const {
    return states.empty() ? std::string() : states.back().error;
}

Bytes vec(const std::string& name) {
    return message_vector(name);
}

Bytes hello(std::string_view json_body) {
    return make_frame(MessageType::control,
                      std::string(R"({"connectionHello":)") + std::string(json_body) + "}");
}

std::string as_text(const Bytes& b) {
    std::string s;
    for (auto c : b)
        s.push_back(c >= 0x20 && c < 0x7F ? static_cast<char>(c) : '.');
    return s;
}

} // namespace ship::test
