#include "harness.hpp"

#include <algorithm>

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

void Harness::deny() {
    conn.deny(now);
    pump();
}

void Harness::close_politely(std::string_view reason) {
    conn.close(reason, now);
    pump();
}

void Harness::remove_trust() {
    conn.remove_trust(now);
    pump();
}

void Harness::advance(Duration d) {
    advance_to(now + d);
}

void Harness::advance_to(TimePoint target) {
    while (const auto deadline = conn.next_deadline()) {
        if (*deadline > target) break;
        now = std::max(now, *deadline);
        conn.handle_timeout(now);
        pump();
    }
    now = target;
}

std::vector<Bytes> Harness::take_sent() {
    std::vector<Bytes> out(sent.begin() + static_cast<std::ptrdiff_t>(sent_seen_), sent.end());
    sent_seen_ = sent.size();
    return out;
}

std::optional<Duration> Harness::deadline_in() const {
    const auto deadline = conn.next_deadline();
    if (!deadline) return std::nullopt;
    return std::chrono::duration_cast<Duration>(*deadline - now);
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

Bytes control(std::string_view json) {
    return make_frame(MessageType::control, json);
}

Bytes access_methods(std::string_view id) {
    return control(std::string(R"({"accessMethods":[{"id":")") + std::string(id) + R"("}]})");
}

Bytes own_access_methods() {
    return access_methods(own_id);
}

Bytes handshake_error(int n) {
    return control(R"({"messageProtocolHandshakeError":[{"error":)" + std::to_string(n) + "}]}");
}

Bytes select_version(int major, int minor) {
    return control(R"({"messageProtocolHandshake":[{"handshakeType":"select"},{"version":[{"major":)" +
                   std::to_string(major) + R"(},{"minor":)" + std::to_string(minor) +
                   R"(}]},{"formats":[{"format":["JSON-UTF8"]}]}]})");
}

void to_hello(Harness& h, Role role) {
    h.open(role);
    h.receive(vec("cmi"));
    h.take_sent();
}

void to_protocol(Harness& h, Role role) {
    to_hello(h, role);
    h.receive(vec("hello-ready"));
    h.take_sent();
}

void to_pin(Harness& h, Role role) {
    to_protocol(h, role);
    if (role == Role::server) h.receive(vec("protocol-announce-max"));
    h.receive(vec("protocol-select"));
    h.take_sent();
}

void to_data(Harness& h, Role role) {
    to_pin(h, role);
    h.receive(vec("pin-none"));
    h.take_sent();
    REQUIRE(h.conn.in_data_exchange());
}

void require_closed(const Harness& h, std::uint16_t code, const std::string& reason) {
    REQUIRE(h.close);
    CHECK(h.close->code == code);
    CHECK(h.close->reason == reason);
    CHECK(h.closed_count == 1);
    CHECK_FALSE(h.conn.next_deadline());
    CHECK_FALSE(h.acted_after_closed);
    CHECK(h.conn.closed());
    CHECK(h.conn.state_name() == "closed");
}

void require_open(const Harness& h) {
    CHECK_FALSE(h.close);
    CHECK(h.closed_count == 0);
}

} // namespace ship::test
