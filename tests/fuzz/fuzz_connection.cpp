// Fuzz target: the SHIP connection state machine (ship::Connection, lib/ship/connection.hpp) driven by an
// arbitrary sequence of peer messages, clock steps, wake-ups and owner calls, in both roles, trusted or not.
// Promises checked after every call: nothing throws; Closed comes at most once and nothing follows it; every
// CloseTransport code is one SHIP uses; every sent message parses and decodes; a connection that is neither
// closed nor in data exchange always has a next deadline, so no handshake can hang; handle_timeout before
// the deadline does nothing and after it leaves only later deadlines; every text handed to the owner
// (errors, notices, data, close reasons) is UTF-8.
//
// Input layout: one config byte (bit 0 server role, 1 peer trusted, 2 allow waiting for trust, 3-4 known peer
// SHIP ID, 5 short timers, 6 own SHIP ID from the input), then operations, each an op byte and its operands
// (see `Op`). When the input ends, the clock jumps to each next deadline until the connection closes or has
// none, then the transport ends; Closed must have come by then.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "fuzz_support.hpp"
#include "ship/connection.hpp"
#include "ship/eebus_json.hpp"
#include "ship/messages.hpp"
#include "util/utf8.hpp"

namespace {

namespace msg = ship::msg;
namespace action = ship::action;
using ship::fuzz::ByteReader;
using ship::fuzz::printable;

ship::Bytes frame(ship::MessageType type, std::string_view json) {
    return ship::make_frame(type, json);
}

// Messages a peer sends, as the vectors (tests/data/ship-messages.json, the ship-go trace) have them, plus
// the near misses a SME must judge: other versions and formats, PIN states, ids, bad CMIs, wrong frame types.
const std::vector<ship::Bytes>& dictionary() {
    using ship::MessageType;
    static const std::vector<ship::Bytes> messages = [] {
        std::vector<ship::Bytes> d;
        d.push_back(ship::cmi_message());
        d.push_back({0x00, 0x01});
        d.push_back({0x00});
        const char* control[] = {
            R"({"connectionHello":[{"phase":"ready"},{"waiting":60000}]})",
            R"({"connectionHello":[{"phase":"ready"}]})",
            R"({"connectionHello":[{"phase":"pending"},{"waiting":60000}]})",
            R"({"connectionHello":[{"phase":"pending"},{"waiting":1500}]})",
            R"({"connectionHello":[{"phase":"pending"},{"waiting":20000}]})",
            R"({"connectionHello":[{"phase":"pending"}]})",
            R"({"connectionHello":[{"phase":"pending"},{"prolongationRequest":true}]})",
            R"({"connectionHello":[{"phase":"ready"},{"waiting":500}]})",
            R"({"connectionHello":[{"phase":"aborted"}]})",
            R"({"messageProtocolHandshake":[{"handshakeType":"announceMax"},{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]})",
            R"({"messageProtocolHandshake":[{"handshakeType":"select"},{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF8"]}]}]})",
            R"({"messageProtocolHandshake":[{"handshakeType":"announceMax"},{"version":[{"major":2},{"minor":1}]},{"formats":["JSON-UTF8"]}]})",
            R"({"messageProtocolHandshake":[{"handshakeType":"select"},{"version":[{"major":1},{"minor":1}]},{"formats":[{"format":["JSON-UTF8"]}]}]})",
            R"({"messageProtocolHandshake":[{"handshakeType":"announceMax"},{"version":[{"major":1},{"minor":0}]},{"formats":[{"format":["JSON-UTF16"]}]}]})",
            R"({"messageProtocolHandshakeError":[{"error":1}]})",
            R"({"error":3})",
            R"({"connectionPinState":[{"pinState":"none"}]})",
            R"({"connectionPinState":[{"pinState":"required"}]})",
            R"({"connectionPinState":[{"pinState":"optional"},{"inputPermission":"ok"}]})",
            R"({"connectionPinState":[{"pinState":"pinOk"}]})",
            R"({"connectionPinError":[{"error":1}]})",
            R"({"connectionPinInput":[{"pin":"1234"}]})",
            R"({"accessMethodsRequest":[]})",
            R"({"accessMethods":[{"id":"Demo-EVSE-234567890"}]})",
            R"({"accessMethods":[{"id":"shippeer-B"},{"dnsSd_mDns":[]},{"dns":[{"uri":"wss://x"}]}]})",
            R"({"accessMethods":[{"id":""}]})",
            R"({"unknownMessage":[]})",
            "{\"connectionHello\":[{\"phase\":\"ready\"}",
        };
        for (const char* c : control)
            d.push_back(frame(MessageType::control, c));
        d.push_back(frame(
            MessageType::data,
            R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[{"header":[{"specificationVersion":"1.3.0"},{"msgCounter":1},{"cmdClassifier":"read"}]},{"payload":[{"cmd":[[{"nodeManagementDetailedDiscoveryData":[]}]]}]}]}}]})"));
        d.push_back(
            frame(MessageType::data, R"({"data":[{"header":[{"protocolId":"other"}]},{"payload":{}}]})"));
        d.push_back(
            frame(MessageType::data, R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":7}]})"));
        d.push_back(
            frame(MessageType::end,
                  R"({"connectionClose":[{"phase":"announce"},{"maxTime":500},{"reason":"unspecific"}]})"));
        d.push_back(frame(MessageType::end, R"({"connectionClose":[{"phase":"confirm"}]})"));
        d.push_back(frame(MessageType::control, R"({"connectionClose":[{"phase":"announce"}]})"));
        d.push_back(frame(MessageType::end, R"({"connectionHello":[{"phase":"ready"}]})"));
        return d;
    }();
    return messages;
}

const std::vector<std::string>& data_payloads() {
    static const std::vector<std::string> payloads = {
        R"({"datagram":{"header":{"specificationVersion":"1.3.0","msgCounter":1,"cmdClassifier":"read"},"payload":{"cmd":[{"nodeManagementDetailedDiscoveryData":{}}]}}})",
        R"({"datagram":{}})",
        "[1,2]",
        "{",
        "",
    };
    return payloads;
}

const std::vector<std::string> known_ids = {"Demo-EVSE-234567890", "shippeer-B", "shippeer-A"};

ship::Timers short_timers() {
    using D = ship::Duration;
    ship::Timers t;
    t.cmi = D{100};
    t.hello_init = D{600};
    t.hello_inc = D{600};
    t.hello_prolong_thr_inc = D{300};
    t.hello_prolong_waiting_gap = D{150};
    t.hello_prolong_min = D{10};
    t.hello_announce_min = D{300};
    t.protocol_handshake = D{100};
    t.pin = D{100};
    t.access_methods = D{600};
    t.close_max_time = D{5};
    t.abort_close_delay = D{10};
    return t;
}

enum class Op : std::uint8_t {
    receive_known,     // dictionary index
    receive_known2,    // (weights the dictionary up)
    receive_bytes,     // length, bytes
    receive_hello,     // phase, which fields, waiting (8 bytes)
    receive_truncated, // dictionary index, cut position
    receive_ids,       // accessMethods with an id from the input: length, bytes
    fire_due,          // the clock to the next deadline, then handle_timeout
    wake,              // 2 bytes of ms: the clock that far on, then handle_timeout (due or not)
    advance,           // 3 bytes of ms, no call (the owner's timer may run late)
    transport_closed,  // length, reason
    approve,
    deny,
    send_data, // choice; or length, bytes
    close,     // length, reason
    remove_trust,
    open_again,
    count
};

// What the owner passes (close and transport reasons) is UTF-8 in shipd; bytes that are not become '?', so
// any text that is not UTF-8 in an action came from the peer's bytes.
std::string owner_text(std::string_view bytes) {
    std::string out;
    std::size_t i = 0;
    while (i < bytes.size()) {
        std::size_t len = 1;
        while (len <= 4 && !ship::is_valid_utf8(bytes.substr(i, len)))
            ++len;
        if (len > 4 || i + len > bytes.size()) {
            out.push_back('?');
            ++i;
        } else {
            out += bytes.substr(i, len);
            i += len;
        }
    }
    return out;
}

constexpr std::int64_t clock_limit_ms = 1'000'000'000'000; // ~31 years of virtual time: no overflow anywhere

class Driver {
public:
    Driver(ship::ConnectionConfig config, ship::Role role)
        : config_(config)
        , role_(role)
        , conn_(std::move(config)) {}

    void open() {
        conn_.open(role_, now_);
        absorb("open");
    }

    void run(ByteReader& in) {
        while (!in.empty())
            step(in);
        drain();
    }

private:
    void step(ByteReader& in) {
        const auto op = static_cast<Op>(in.pick(static_cast<std::size_t>(Op::count)));
        switch (op) {
        case Op::receive_known:
        case Op::receive_known2: {
            const auto& m = dictionary()[in.pick(dictionary().size())];
            conn_.receive(m, now_);
            return absorb("receive " + printable(std::string(m.begin(), m.end()), 60));
        }
        case Op::receive_bytes: {
            const auto bytes = in.sized();
            const ship::Bytes m(bytes.begin(), bytes.end());
            conn_.receive(m, now_);
            return absorb("receive bytes " + printable(bytes, 60));
        }
        case Op::receive_hello: {
            const std::uint8_t shape = in.byte();
            msg::ConnectionHello h;
            h.phase = static_cast<msg::HelloPhase>(shape % 3);
            const std::uint64_t waiting = in.number(8) >> (in.byte() % 64);
            if (shape & 0x04) h.waiting = waiting;
            if (shape & 0x08) h.prolongation_request = (shape & 0x10) != 0;
            conn_.receive(msg::encode(h), now_);
            return absorb("receive hello");
        }
        case Op::receive_truncated: {
            const auto& m = dictionary()[in.pick(dictionary().size())];
            const std::size_t cut = in.byte() % (m.size() + 1);
            const ship::Bytes part(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(cut));
            conn_.receive(part, now_);
            return absorb("receive truncated");
        }
        case Op::receive_ids: {
            const auto id = in.sized();
            conn_.receive(msg::encode(msg::AccessMethods{std::string(id), false, {}}), now_);
            return absorb("receive accessMethods id " + printable(id, 60));
        }
        case Op::fire_due:
            return fire_due();
        case Op::wake:
            advance_to(now_ + ship::Duration(static_cast<std::int64_t>(in.number(2))));
            return handle_timeout("wake");
        case Op::advance:
            return advance_to(now_ + ship::Duration(static_cast<std::int64_t>(in.number(3))));
        case Op::transport_closed: {
            conn_.transport_closed(owner_text(in.sized()));
            absorb("transport_closed");
            FUZZ_REQUIRE(closed_seen_, "no Closed after transport_closed");
            return;
        }
        case Op::approve:
            conn_.approve(now_);
            return absorb("approve");
        case Op::deny: {
            const std::string before(conn_.state_name());
            conn_.deny(now_);
            absorb("deny");
            if (before == "hello-pending-listen" || before == "hello-ready-listen")
                FUZZ_REQUIRE(conn_.state_name() == "hello-abort-done",
                             "deny in " + before + " left " + std::string(conn_.state_name()));
            return;
        }
        case Op::send_data: {
            const std::size_t choice = in.pick(data_payloads().size() + 1);
            const std::string payload =
                choice < data_payloads().size() ? data_payloads()[choice] : std::string(in.sized());
            return send_data(payload);
        }
        case Op::close:
        case Op::remove_trust: {
            if (op == Op::close)
                conn_.close(owner_text(in.sized()), now_);
            else
                conn_.remove_trust(now_);
            absorb(op == Op::close ? "close" : "remove_trust");
            const auto state = conn_.state_name();
            FUZZ_REQUIRE(closed_seen_ || ((state == "close-wait-confirm" || state == "hello-abort-done") &&
                                          conn_.next_deadline()),
                         "close/remove_trust left " + std::string(state) + " with no deadline");
            return;
        }
        case Op::open_again: {
            const std::string before(conn_.state_name());
            conn_.open(role_ == ship::Role::client ? ship::Role::server : ship::Role::client, now_);
            absorb("open again");
            FUZZ_REQUIRE(conn_.state_name() == before && conn_.role() == role_,
                         "a second open() changed state");
            return;
        }
        case Op::count:
            return;
        }
    }

    void send_data(const std::string& payload) {
        const bool was_in_data_exchange = conn_.in_data_exchange();
        const auto error = conn_.send_data(payload);
        auto actions = conn_.take_actions();
        if (error) {
            FUZZ_REQUIRE(!error->empty(), "send_data refused without a reason");
            FUZZ_REQUIRE(actions.empty(), "send_data refused but acted");
            return;
        }
        FUZZ_REQUIRE(was_in_data_exchange, "send_data accepted outside data exchange");
        FUZZ_REQUIRE(actions.size() == 1 && std::holds_alternative<action::Send>(actions[0]) &&
                         std::get<action::Send>(actions[0]).bytes.front() ==
                             static_cast<std::uint8_t>(ship::MessageType::data),
                     "send_data accepted but did not send exactly one data message");
        check(actions, "send_data");
    }

    void fire_due() {
        const auto deadline = conn_.next_deadline();
        if (!deadline) return;
        advance_to(*deadline);
        handle_timeout("timeout");
    }

    // The owner's timer ran (on time, late or early): before the deadline nothing may happen; after it only
    // later deadlines may be left.
    void handle_timeout(const std::string& what) {
        const auto before = conn_.next_deadline();
        const bool due = before && *before <= now_;
        conn_.handle_timeout(now_);
        if (!due) {
            FUZZ_REQUIRE(conn_.take_actions().empty(), what + ": handle_timeout before the deadline acted");
            FUZZ_REQUIRE(conn_.next_deadline() == before,
                         what + ": handle_timeout before the deadline moved it");
            return;
        }
        absorb(what);
        const auto after = conn_.next_deadline();
        FUZZ_REQUIRE(!after || *after > now_,
                     what + ": a deadline that was due is left after handle_timeout");
    }

    void advance_to(ship::TimePoint t) {
        const auto limit = ship::TimePoint{} + ship::Duration(clock_limit_ms);
        if (t > now_) now_ = t < limit ? t : limit;
    }

    // The end of the input: let time run out on whatever is pending, then the transport ends.
    void drain() {
        for (int i = 0; i < 16 && !closed_seen_ && conn_.next_deadline(); ++i)
            fire_due();
        if (!closed_seen_) {
            conn_.transport_closed("fuzz input ended");
            absorb("final transport_closed");
        }
        FUZZ_REQUIRE(closed_seen_ && conn_.closed(), "no Closed after the transport ended");
    }

    void absorb(const std::string& what) {
        auto actions = conn_.take_actions();
        if (trace_) print(actions, what);
        check(actions, what);
    }

    // SHIPD_FUZZ_TRACE=1: every call and what it produced, for reading a crash input.
    void print(const std::vector<ship::Action>& actions, const std::string& what) const {
        const auto ms = [](ship::TimePoint t) {
            return static_cast<long long>(
                std::chrono::duration_cast<ship::Duration>(t.time_since_epoch()).count());
        };
        const auto deadline = conn_.next_deadline();
        std::fprintf(stderr, "t=%lld ms %s -> %s, next deadline %s\n", ms(now_), what.c_str(),
                     std::string(conn_.state_name()).c_str(),
                     deadline ? (std::to_string(ms(*deadline)) + " ms").c_str() : "none");
        for (const auto& a : actions) {
            std::string line;
            if (const auto* s = std::get_if<action::Send>(&a))
                line = "send " + printable(std::string(s->bytes.begin(), s->bytes.end()), 100);
            else if (const auto* ct = std::get_if<action::CloseTransport>(&a))
                line = "close transport " + std::to_string(ct->code) + " " + ct->reason;
            else if (const auto* sc = std::get_if<action::StateChanged>(&a))
                line = "state " + std::string(ship::to_string(sc->state)) + " " + sc->error;
            else if (const auto* id = std::get_if<action::ShipIdLearned>(&a))
                line = "ship id " + id->ship_id;
            else if (const auto* d = std::get_if<action::DataReceived>(&a))
                line = "data " + printable(d->json, 100);
            else if (std::holds_alternative<action::Completed>(a))
                line = "completed";
            else if (const auto* c2 = std::get_if<action::Closed>(&a))
                line = "closed " + c2->reason;
            else if (const auto* n = std::get_if<action::Notice>(&a))
                line = "notice " + n->text;
            std::fprintf(stderr, "    %s\n", line.c_str());
        }
    }

    void check_sent(const ship::Bytes& bytes, const std::string& what) {
        FUZZ_REQUIRE(!close_transport_seen_, what + ": Send after CloseTransport");
        if (ship::is_valid_cmi(bytes)) {
            FUZZ_REQUIRE(++cmi_sent_ == 1, what + ": sent a second CMI");
            return;
        }
        auto f = ship::parse_frame(bytes);
        const std::string text = printable(std::string(bytes.begin(), bytes.end()), 120);
        const auto* parsed = std::get_if<ship::Frame>(&f);
        FUZZ_REQUIRE(parsed, what + ": sent an unparsable frame " + text);
        auto decoded = msg::decode(*parsed);
        const auto* m = std::get_if<msg::Message>(&decoded);
        FUZZ_REQUIRE(m, what + ": sent a message that does not decode: " + text + ": " +
                            std::get<msg::DecodeError>(decoded).reason);
        if (const auto* am = std::get_if<msg::AccessMethods>(m))
            FUZZ_REQUIRE(am->id == config_.own_ship_id, what + ": accessMethods carries another id: " + text);
        if (const auto* h = std::get_if<msg::ConnectionHello>(m); h && h->waiting) {
            const auto least = std::min(config_.timers.hello_announce_min, config_.timers.hello_init);
            FUZZ_REQUIRE(*h->waiting >= static_cast<std::uint64_t>(least.count()),
                         what + ": announced waiting below the minimum: " + text);
        }
        if (std::holds_alternative<msg::Data>(*m))
            FUZZ_REQUIRE(completed_seen_, what + ": data before Completed");
    }

    // The text an action carries to the owner's logs, D-Bus or the peer (WebSocket close reason).
    static const std::string* text_of(const ship::Action& a) {
        if (const auto* ct = std::get_if<action::CloseTransport>(&a)) return &ct->reason;
        if (const auto* sc = std::get_if<action::StateChanged>(&a)) return &sc->error;
        if (const auto* id = std::get_if<action::ShipIdLearned>(&a)) return &id->ship_id;
        if (const auto* d = std::get_if<action::DataReceived>(&a)) return &d->json;
        if (const auto* c = std::get_if<action::Closed>(&a)) return &c->reason;
        if (const auto* n = std::get_if<action::Notice>(&a)) return &n->text;
        return nullptr;
    }

    void check(const std::vector<ship::Action>& actions, const std::string& what) {
        for (const auto& a : actions) {
            FUZZ_REQUIRE(!closed_seen_, what + ": an action after Closed");
            if (const auto* text = text_of(a))
                FUZZ_REQUIRE(ship::is_valid_utf8(*text),
                             what + ": an action's text is not UTF-8: " + printable(*text));
            if (const auto* s = std::get_if<action::Send>(&a)) {
                check_sent(s->bytes, what);
            } else if (const auto* ct = std::get_if<action::CloseTransport>(&a)) {
                FUZZ_REQUIRE(!close_transport_seen_, what + ": a second CloseTransport");
                close_transport_seen_ = true;
                FUZZ_REQUIRE(ct->code == ship::close_code_ship ||
                                 ct->code == ship::close_code_hello_rejected ||
                                 ct->code == ship::close_code_trust_removed,
                             what + ": close code " + std::to_string(ct->code));
                FUZZ_REQUIRE(ct->reason.size() <= ship::util::max_close_reason_bytes,
                             what + ": close reason too long");
            } else if (const auto* sc = std::get_if<action::StateChanged>(&a)) {
                const bool error_state =
                    sc->state == ship::PeerState::error || sc->state == ship::PeerState::remote_denied_trust;
                FUZZ_REQUIRE(error_state != sc->error.empty(),
                             what + ": state " + std::string(ship::to_string(sc->state)) +
                                 " with error text '" + printable(sc->error) + "'");
            } else if (const auto* id = std::get_if<action::ShipIdLearned>(&a)) {
                FUZZ_REQUIRE(!id->ship_id.empty(), what + ": learned an empty SHIP ID");
                if (config_.known_peer_ship_id)
                    FUZZ_REQUIRE(id->ship_id == *config_.known_peer_ship_id,
                                 what + ": learned a wrong SHIP ID");
            } else if (const auto* d = std::get_if<action::DataReceived>(&a)) {
                FUZZ_REQUIRE(completed_seen_, what + ": data delivered before Completed");
                rapidjson::Document doc;
                FUZZ_REQUIRE(!ship::json::parse(d->json, doc) && doc.IsObject(),
                             what + ": delivered data is not a JSON object: " + printable(d->json));
            } else if (std::holds_alternative<action::Completed>(a)) {
                FUZZ_REQUIRE(!completed_seen_, what + ": a second Completed");
                completed_seen_ = true;
            } else if (std::holds_alternative<action::Closed>(a)) {
                closed_seen_ = true;
                FUZZ_REQUIRE(!conn_.next_deadline(), what + ": Closed with a deadline left");
            } else if (const auto* n = std::get_if<action::Notice>(&a)) {
                FUZZ_REQUIRE(!n->text.empty(), what + ": empty notice");
            }
        }
        const std::string state(conn_.state_name());
        FUZZ_REQUIRE(conn_.closed() == closed_seen_, what + ": closed() disagrees with Closed");
        FUZZ_REQUIRE(conn_.awaiting_trust() == (state == "hello-pending-listen"),
                     what + ": awaiting_trust()");
        FUZZ_REQUIRE(conn_.in_data_exchange() == (state == "data-exchange"), what + ": in_data_exchange()");
        FUZZ_REQUIRE(!conn_.in_data_exchange() || completed_seen_,
                     what + ": data exchange without Completed");
        FUZZ_REQUIRE(conn_.role() == role_, what + ": role changed");
        FUZZ_REQUIRE(closed_seen_ || state == "data-exchange" || conn_.next_deadline(),
                     what + ": in " + state + " with no deadline: the handshake can hang");
    }

    ship::ConnectionConfig config_;
    ship::Role role_;
    ship::Connection conn_;
    ship::TimePoint now_ = ship::TimePoint{} + ship::Duration(3'600'000);
    bool closed_seen_ = false;
    bool close_transport_seen_ = false;
    bool completed_seen_ = false;
    int cmi_sent_ = 0;
    bool trace_ = std::getenv("SHIPD_FUZZ_TRACE") != nullptr;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ByteReader in(data, size);
    const std::uint8_t setup = in.byte();
    ship::ConnectionConfig config;
    config.own_ship_id = "shipd-HEMS-1";
    config.peer_trusted = (setup & 0x02) != 0;
    config.allow_waiting_for_trust = (setup & 0x04) != 0;
    if (const unsigned id = (setup >> 3) & 0x03; id != 0) config.known_peer_ship_id = known_ids[id - 1];
    if (setup & 0x20) config.timers = short_timers();
    if (setup & 0x40) {
        // The constructor's promise: it takes exactly the ids a control message can carry.
        config.own_ship_id = std::string(in.sized());
        const bool acceptable =
            !config.own_ship_id.empty() && ship::is_safe_control_string(config.own_ship_id);
        try {
            ship::Connection probe(config);
            FUZZ_REQUIRE(acceptable, "Connection took the SHIP ID " + printable(config.own_ship_id));
        } catch (const std::invalid_argument&) {
            FUZZ_REQUIRE(!acceptable, "Connection refused the SHIP ID " + printable(config.own_ship_id));
            return 0;
        }
    }
    const auto role = (setup & 0x01) ? ship::Role::server : ship::Role::client;
    try {
        Driver driver(config, role);
        driver.open();
        driver.run(in);
    } catch (const std::exception& e) {
        ship::fuzz::invariant_broken(__FILE__, __LINE__, "nothing throws", e.what());
    }
    return 0;
}
