#include "ship/connection.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

#include "ship/messages.hpp"
#include "util/utf8.hpp"

namespace ship {

namespace {

enum class State {
    idle,
    cmi_client_wait,
    cmi_server_wait,
    hello_ready_listen,
    hello_pending_listen,
    hello_abort_done, // sent `aborted`; the WebSocket closes after abort_close_delay
    prot_client_listen_choice,
    prot_server_listen_proposal,
    prot_server_listen_confirm,
    pin_check_listen,
    data_exchange,
    close_wait_confirm, // sent connectionClose announce; waiting for confirm or maxTime
    closed,
};

std::string_view state_text(State s) {
    switch (s) {
    case State::idle:
        return "idle";
    case State::cmi_client_wait:
        return "cmi-client-wait";
    case State::cmi_server_wait:
        return "cmi-server-wait";
    case State::hello_ready_listen:
        return "hello-ready-listen";
    case State::hello_pending_listen:
        return "hello-pending-listen";
    case State::hello_abort_done:
        return "hello-abort-done";
    case State::prot_client_listen_choice:
        return "prot-h-client-listen-choice";
    case State::prot_server_listen_proposal:
        return "prot-h-server-listen-proposal";
    case State::prot_server_listen_confirm:
        return "prot-h-server-listen-confirm";
    case State::pin_check_listen:
        return "pin-check-listen";
    case State::data_exchange:
        return "data-exchange";
    case State::close_wait_confirm:
        return "close-wait-confirm";
    case State::closed:
        return "closed";
    }
    return "unknown";
}

constexpr std::string_view hello_rejected_reason = "Node rejected by application";

std::string ms_text(Duration d) {
    return std::to_string(d.count()) + " ms";
}

std::string hex_prefix(std::span<const std::uint8_t> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    const std::size_t n = std::min<std::size_t>(bytes.size(), 8);
    for (std::size_t i = 0; i < n; ++i) {
        if (i) out.push_back(' ');
        out.push_back(digits[bytes[i] >> 4]);
        out.push_back(digits[bytes[i] & 0x0F]);
    }
    if (bytes.size() > n) out += " ...";
    if (bytes.empty()) out = "nothing";
    return out;
}

std::string version_text(const msg::ProtocolVersion& v) {
    return std::to_string(v.major) + "." + std::to_string(v.minor);
}

std::string formats_text(const std::vector<std::string>& formats) {
    std::string out = "[";
    for (const auto& f : formats) {
        if (out.size() > 1) out += ",";
        out += util::cut_utf8(f, 32);
    }
    return out + "]";
}

// The SME's timers. Each kind runs at most once at a time; starting one again moves its deadline.
enum class TimerKind : std::size_t {
    cmi,                  // CmiTimeout: waiting for the peer's CMI
    hello_wait_for_ready, // T_hello: how long we wait for the peer to become ready (announced as `waiting`)
    hello_send_prolongation,  // when we are pending: ask the peer for more time before its deadline
    hello_prolongation_reply, // the peer must answer our prolongation request before its deadline
    protocol_handshake,       // Wait-Timer of the protocol handshake
    pin,                      // bounded wait for the peer's connectionPinState
    access_methods,           // the peer must answer our accessMethodsRequest
    close,                    // 1 s after hello abort, or maxTime after connectionClose announce
};
constexpr std::size_t timer_kinds = static_cast<std::size_t>(TimerKind::close) + 1;

// Absolute deadlines, so the owner needs to keep only one timer: the earliest of them.
class Deadlines {
public:
    void start(TimerKind k, TimePoint at) { at_[index(k)] = at; }
    void stop(TimerKind k) { at_[index(k)].reset(); }
    void stop_all() { at_.fill(std::nullopt); }
    bool running(TimerKind k) const { return at_[index(k)].has_value(); }
    std::optional<TimePoint> at(TimerKind k) const { return at_[index(k)]; }

    std::optional<TimePoint> earliest() const {
        std::optional<TimePoint> out;
        for (const auto& t : at_)
            if (t && (!out || *t < *out)) out = t;
        return out;
    }
    // The kind with the earliest deadline <= now (the lower kind on a tie), if any.
    std::optional<TimerKind> due(TimePoint now) const {
        std::optional<TimerKind> out;
        for (std::size_t i = 0; i < timer_kinds; ++i)
            if (at_[i] && *at_[i] <= now && (!out || *at_[i] < *at_[index(*out)]))
                out = static_cast<TimerKind>(i);
        return out;
    }

private:
    static std::size_t index(TimerKind k) { return static_cast<std::size_t>(k); }
    std::array<std::optional<TimePoint>, timer_kinds> at_{};
};

const msg::MessageProtocolHandshake our_selection{msg::HandshakeType::select, {1, 0}, {"JSON-UTF8"}};
const msg::MessageProtocolHandshake our_announcement{msg::HandshakeType::announce_max, {1, 0}, {"JSON-UTF8"}};

} // namespace

bool is_safe_control_string(std::string_view s) {
    if (!is_valid_utf8(s)) return false; // a frame that is not UTF-8 is refused by every peer
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || c == '[' || c == ']' || c == '{' || c == '}' || c == '"' || c == '\\') return false;
    }
    return s.find("datagram") == std::string_view::npos;
}

struct Connection::Impl {
    ConnectionConfig config;
    std::optional<Role> role;
    State state = State::idle;
    std::vector<Action> actions;
    Deadlines timers;

    // hello
    bool peer_ready = false;   // pending side: the peer said ready
    TimePoint peer_deadline{}; // pending side: when the peer's announced `waiting` runs out
    bool approved = false;     // we were pending and the user trusted the peer
    // Pending side: the peer's first protocol-handshake message, come before our user decided (OpenEEBUS).
    std::optional<msg::MessageProtocolHandshake> held_handshake;
    // data exchange
    std::optional<std::string> peer_ship_id;
    // close
    std::uint16_t close_code = close_code_ship;
    std::string close_reason;

    explicit Impl(ConnectionConfig c)
        : config(std::move(c)) {}

    // ---- outputs -------------------------------------------------------------------------------------

    void send(Bytes bytes) { actions.emplace_back(action::Send{std::move(bytes)}); }
    void notice(std::string text) { actions.emplace_back(action::Notice{std::move(text)}); }
    void report(PeerState s, std::string error = {}) {
        actions.emplace_back(action::StateChanged{s, std::move(error)});
    }

    void arm(TimerKind k, TimePoint now, Duration after) {
        timers.start(k, now + std::max(after, Duration{0}));
    }
    void cancel(TimerKind k) { timers.stop(k); }
    void cancel_all() { timers.stop_all(); }

    // The terminal step: nothing follows Closed.
    void finish(std::string reason) {
        cancel_all();
        state = State::closed;
        actions.emplace_back(action::Closed{std::move(reason)});
    }
    void close_transport(std::uint16_t code, std::string_view ws_reason, std::string reason,
                         std::string peer_request = {}) {
        cancel_all();
        actions.emplace_back(action::CloseTransport{
            code, util::cut_utf8(ws_reason, util::max_close_reason_bytes), std::move(peer_request)});
        finish(std::move(reason));
    }
    // Ends the connection before data exchange: state error and WebSocket close with the error text.
    void fail(std::uint16_t code, const std::string& reason) {
        report(PeerState::error, reason);
        close_transport(code, reason, reason);
    }

    // ---- CMI -----------------------------------------------------------------------------------------

    void open(Role r, TimePoint now) {
        if (state != State::idle) return;
        role = r;
        report(PeerState::initiated);
        arm(TimerKind::cmi, now, config.timers.cmi);
        if (r == Role::client) {
            send(cmi_message());
            state = State::cmi_client_wait;
        } else {
            state = State::cmi_server_wait;
        }
    }

    void on_cmi(std::span<const std::uint8_t> message, TimePoint now) {
        const bool server = state == State::cmi_server_wait;
        if (!is_valid_cmi(message)) {
            // TC_SHIP_CMI_001/005: a server still answers with its own CMI before closing.
            if (server) send(cmi_message());
            fail(close_code_ship, "CMI: expected 00 00, received " + hex_prefix(message));
            return;
        }
        cancel(TimerKind::cmi);
        if (server) send(cmi_message());
        start_hello(now);
    }

    // ---- hello (SHIP 13.4.4.1) -----------------------------------------------------------------------

    void send_hello(msg::HelloPhase phase, std::optional<Duration> waiting, bool prolongation = false) {
        msg::ConnectionHello h{phase, std::nullopt, std::nullopt};
        if (waiting) h.waiting = static_cast<std::uint64_t>(waiting->count());
        if (prolongation) h.prolongation_request = true;
        send(msg::encode(h));
    }

    void arm_wait_for_ready(TimePoint now, Duration d) { arm(TimerKind::hello_wait_for_ready, now, d); }

    void start_hello(TimePoint now) {
        if (config.peer_trusted) {
            send_hello(msg::HelloPhase::ready, config.timers.hello_init);
            arm_wait_for_ready(now, config.timers.hello_init);
            state = State::hello_ready_listen;
            report(PeerState::in_progress);
        } else if (config.allow_waiting_for_trust) {
            send_hello(msg::HelloPhase::pending, config.timers.hello_init);
            arm_wait_for_ready(now, config.timers.hello_init);
            peer_ready = false;
            state = State::hello_pending_listen;
            report(PeerState::received_pairing_request);
        } else {
            hello_abort(now, "hello: the peer is not trusted and waiting for trust is off");
        }
    }

    // SME_HELLO_ABORT: tell the peer, then close 4452 after abort_close_delay.
    void hello_abort(TimePoint now, const std::string& reason) {
        cancel_all();
        send_hello(msg::HelloPhase::aborted, std::nullopt);
        report(PeerState::error, reason);
        close_code = close_code_hello_rejected;
        close_reason = reason;
        state = State::hello_abort_done;
        arm(TimerKind::close, now, config.timers.abort_close_delay);
    }

    void remote_abort() {
        report(PeerState::remote_denied_trust, "the peer aborted hello (it does not trust us)");
        close_transport(close_code_hello_rejected, hello_rejected_reason, "hello aborted by the peer",
                        "SHIP hello abort (it does not trust us)");
    }

    // HELLO_002: add T_hello_inc to the time left (never restart) and tell the peer what is left now.
    void grant_prolongation(TimePoint now, msg::HelloPhase our_phase) {
        Duration left{0};
        if (const auto deadline = timers.at(TimerKind::hello_wait_for_ready))
            left = std::max(Duration{0}, std::chrono::duration_cast<Duration>(*deadline - now));
        // A burst of requests must not buy days (10 000 of them added ~7 days and held a handshake slot
        // that long): the time left never exceeds T_hello_init + T_hello_inc. HELLO_002's rounds (15 s
        // left, plus 60 s) stay well inside that.
        const Duration ceiling = config.timers.hello_init + config.timers.hello_inc;
        const Duration announced =
            std::max(std::min(left + config.timers.hello_inc, ceiling), config.timers.hello_announce_min);
        arm_wait_for_ready(now, announced);
        send_hello(our_phase, announced);
    }

    // The schema's waiting is an unsignedInt: anything larger is cut to ~49 days so timer arithmetic
    // downstream (ns, µs) cannot overflow.
    static Duration peer_waiting(const msg::ConnectionHello& h) {
        return Duration(
            static_cast<Duration::rep>(std::min<std::uint64_t>(h.waiting.value_or(0), 0xFFFFFFFFU)));
    }

    // We are pending and the peer announced `waiting`: ask for more time before that runs out; the answer
    // must come before the peer's deadline.
    void schedule_prolongation(TimePoint now, Duration waiting) {
        cancel(TimerKind::hello_prolongation_reply);
        const auto& t = config.timers;
        if (waiting < t.hello_prolong_min) {
            hello_abort(now, "hello: the peer announced waiting " + ms_text(waiting) +
                                 ", below T_hello_prolong_min");
            return;
        }
        Duration margin = t.hello_prolong_min;
        if (waiting >= t.hello_prolong_thr_inc)
            margin = t.hello_prolong_thr_inc;
        else if (waiting >= t.hello_prolong_waiting_gap)
            margin = t.hello_prolong_waiting_gap;
        peer_deadline = now + waiting;
        arm(TimerKind::hello_send_prolongation, now, waiting - margin);
    }

    void hello_ok(TimePoint now) {
        cancel(TimerKind::hello_wait_for_ready);
        cancel(TimerKind::hello_send_prolongation);
        cancel(TimerKind::hello_prolongation_reply);
        report(PeerState::trusted);
        // The client proposes; a server never sends announceMax (a ship-go client would abort).
        if (role == Role::client) {
            send(msg::encode(our_announcement));
            state = State::prot_client_listen_choice;
        } else {
            state = State::prot_server_listen_proposal;
        }
        arm(TimerKind::protocol_handshake, now, config.timers.protocol_handshake);
    }

    void on_hello_ready_listen(const msg::Message& m, TimePoint now) {
        const auto* h = std::get_if<msg::ConnectionHello>(&m);
        if (!h) {
            // Leniency (OpenEEBUS): we said ready only now, on approve, and the peer's protocol handshake,
            // sent while it still saw us pending, overtook the `ready` we have not seen yet. Its hello is
            // done.
            if (approved && std::holds_alternative<msg::MessageProtocolHandshake>(m)) {
                notice("hello: the peer's messageProtocolHandshake came before its ready; taken as its hello "
                       "done");
                hello_ok(now);
                return on_protocol(m, now);
            }
            return hello_abort(now,
                               "hello: unexpected " + std::string(msg::name(m)) + " while waiting for hello");
        }
        switch (h->phase) {
        case msg::HelloPhase::ready:
            return hello_ok(now);
        case msg::HelloPhase::pending:
            if (h->prolongation_request == true) return grant_prolongation(now, msg::HelloPhase::ready);
            // HELLO_004: pending without a prolongation request changes nothing.
            return notice("hello: peer is pending (no prolongation request); still waiting");
        case msg::HelloPhase::aborted:
            return remote_abort();
        }
    }

    // Leniency (OpenEEBUS, NIBE): the peer is done with hello (it said ready, or we did not see its hello
    // complete) and has begun the protocol handshake while our user still decides. Not an error: the first
    // such message is held and answered once we are ready; a second one still aborts.
    void hold_handshake(const msg::MessageProtocolHandshake& p, TimePoint now) {
        held_handshake = p;
        peer_ready = true;
        notice(std::string("hello: held the peer's early messageProtocolHandshake (") +
               (p.type == msg::HandshakeType::select ? "select" : "announceMax") +
               ") until our user decides");
        // It left hello: it grants no more time, and a hello of ours would be a protocol error to it. So our
        // own T_hello bounds the wait for the user from now on, unless it already runs.
        cancel(TimerKind::hello_send_prolongation);
        cancel(TimerKind::hello_prolongation_reply);
        if (!timers.running(TimerKind::hello_wait_for_ready))
            arm_wait_for_ready(now, config.timers.hello_init);
    }

    void on_hello_pending_listen(const msg::Message& m, TimePoint now) {
        const auto* h = std::get_if<msg::ConnectionHello>(&m);
        if (!h) {
            if (const auto* p = std::get_if<msg::MessageProtocolHandshake>(&m); p && !held_handshake)
                return hold_handshake(*p, now);
            return hello_abort(now,
                               "hello: unexpected " + std::string(msg::name(m)) + " while waiting for hello" +
                                   (held_handshake ? " (one messageProtocolHandshake is held already)" : ""));
        }
        if (held_handshake && h->phase != msg::HelloPhase::aborted)
            return notice("hello: ignored a hello after the peer's messageProtocolHandshake");
        switch (h->phase) {
        case msg::HelloPhase::ready:
            peer_ready = true;
            cancel(TimerKind::hello_prolongation_reply);
            if (h->waiting) {
                // The peer waits for our user; from now on its deadline, kept off by prolongation, bounds
                // the wait instead of ours.
                cancel(TimerKind::hello_wait_for_ready);
                return schedule_prolongation(now, peer_waiting(*h));
            }
            // No deadline from the peer: our own wait-for-ready timer bounds the wait. An earlier ready with
            // `waiting` handed that job to the peer's deadline and cancelled ours, so start it again.
            cancel(TimerKind::hello_send_prolongation);
            if (!timers.running(TimerKind::hello_wait_for_ready))
                arm_wait_for_ready(now, config.timers.hello_init);
            return;
        case msg::HelloPhase::pending:
            // Leniency (OpenEEBUS, NIBE): a ready peer answers our prolongation request by echoing our phase,
            // `pending`, with its new `waiting` and no request of its own. It is still ready: taking it as
            // pending would stop the pairing at our own deadline and fail the handshake after approve.
            if (peer_ready && timers.running(TimerKind::hello_prolongation_reply) && h->waiting &&
                h->prolongation_request != true) {
                notice("hello: the ready peer answered our prolongation request with phase pending; still "
                       "taken as ready");
                return schedule_prolongation(now, peer_waiting(*h));
            }
            if (peer_ready) { // the peer went back to pending: wait for it again
                peer_ready = false;
                arm_wait_for_ready(now, config.timers.hello_init);
            }
            if (h->prolongation_request == true) return grant_prolongation(now, msg::HelloPhase::pending);
            if (h->waiting) return schedule_prolongation(now, peer_waiting(*h));
            return notice("hello: peer is pending without waiting or prolongation request; ignored");
        case msg::HelloPhase::aborted:
            return remote_abort();
        }
    }

    void approve(TimePoint now) {
        if (state != State::hello_pending_listen) return;
        cancel(TimerKind::hello_send_prolongation);
        cancel(TimerKind::hello_prolongation_reply);
        send_hello(msg::HelloPhase::ready, config.timers.hello_init);
        approved = true;
        if (peer_ready) {
            hello_ok(now);
            if (auto held = std::exchange(held_handshake, std::nullopt)) on_protocol(*held, now);
            return;
        }
        arm_wait_for_ready(now, config.timers.hello_init);
        state = State::hello_ready_listen;
        report(PeerState::in_progress);
    }

    void deny(TimePoint now, std::string_view reason) {
        if (state == State::hello_pending_listen || state == State::hello_ready_listen)
            hello_abort(now, "hello: " + std::string(reason.empty() ? "trust denied by the user" : reason));
    }

    // ---- protocol handshake (SHIP 13.4.4.2) ----------------------------------------------------------

    void protocol_error(msg::HandshakeError e, const std::string& reason) {
        send(msg::encode(msg::MessageProtocolHandshakeError{static_cast<std::uint64_t>(e)}));
        fail(close_code_ship, reason);
    }

    std::string_view awaited_handshake_message() const {
        switch (state) {
        case State::prot_client_listen_choice:
            return "select";
        case State::prot_server_listen_proposal:
            return "announceMax";
        default:
            return "select echo";
        }
    }

    void on_protocol(const msg::Message& m, TimePoint now) {
        if (const auto* e = std::get_if<msg::MessageProtocolHandshakeError>(&m))
            return fail(close_code_ship, "protocol handshake: the peer sent error " +
                                             std::to_string(e->error) + error_meaning(e->error));
        const auto* p = std::get_if<msg::MessageProtocolHandshake>(&m);
        const std::string expected(awaited_handshake_message());
        if (!p)
            return protocol_error(msg::HandshakeError::unexpected_message, "protocol handshake: unexpected " +
                                                                               std::string(msg::name(m)) +
                                                                               ", expected " + expected);
        const bool want_select = state != State::prot_server_listen_proposal;
        if ((p->type == msg::HandshakeType::select) != want_select)
            return protocol_error(msg::HandshakeError::unexpected_message,
                                  std::string("protocol handshake: unexpected ") +
                                      (want_select ? "announceMax" : "select") + ", expected " + expected);
        cancel(TimerKind::protocol_handshake);

        if (state == State::prot_server_listen_proposal) {
            const bool json =
                std::find(p->formats.begin(), p->formats.end(), msg::format_json_utf8) != p->formats.end();
            if (p->version.major < 1 || !json)
                return protocol_error(msg::HandshakeError::selection_mismatch,
                                      "protocol handshake: nothing in common with announceMax version " +
                                          version_text(p->version) + " formats " + formats_text(p->formats));
            // Our maximum is 1.0, and every node supports 1.0 up to its maximum.
            send(msg::encode(our_selection));
            state = State::prot_server_listen_confirm;
            arm(TimerKind::protocol_handshake, now, config.timers.protocol_handshake);
            return;
        }
        if (!(*p == our_selection)) {
            const std::string what =
                state == State::prot_client_listen_choice ? "the server selected " : "the client confirmed ";
            return protocol_error(msg::HandshakeError::selection_mismatch,
                                  "protocol handshake: " + what + "version " + version_text(p->version) +
                                      " formats " + formats_text(p->formats) +
                                      ", we offered 1.0 [JSON-UTF8]");
        }
        if (state == State::prot_client_listen_choice) send(msg::encode(our_selection));
        enter_pin(now);
    }

    static std::string error_meaning(std::uint64_t e) {
        switch (e) {
        case 1:
            return " (timeout)";
        case 2:
            return " (unexpected message)";
        case 3:
            return " (selection mismatch)";
        default:
            return "";
        }
    }

    // ---- PIN (SHIP 13.4.4.3): shipd has no PIN and supports none --------------------------------------

    void enter_pin(TimePoint now) {
        report(PeerState::pin);
        send(msg::encode(msg::ConnectionPinState{msg::PinState::none, std::nullopt}));
        state = State::pin_check_listen;
        arm(TimerKind::pin, now, config.timers.pin);
    }

    void on_pin(const msg::Message& m, TimePoint now) {
        if (const auto* e = std::get_if<msg::ConnectionPinError>(&m))
            return fail(close_code_ship, "PIN: the peer reported PIN error " + std::to_string(e->error));
        const auto* p = std::get_if<msg::ConnectionPinState>(&m);
        if (!p)
            return fail(close_code_ship, "PIN: unexpected " + std::string(msg::name(m)) +
                                             " while waiting for connectionPinState");
        switch (p->pin_state) {
        case msg::PinState::required:
            return fail(close_code_ship, "PIN: the peer requires a PIN; shipd supports only pinState none");
        case msg::PinState::optional:
            notice("PIN: the peer offers an optional PIN; continuing without (its data exchange may be "
                   "restricted)");
            break;
        case msg::PinState::none:
        case msg::PinState::pin_ok:
            break;
        }
        cancel(TimerKind::pin);
        enter_data_exchange(now);
    }

    // ---- data exchange (SHIP 13.4.5, 13.4.6) ---------------------------------------------------------

    void enter_data_exchange(TimePoint now) {
        state = State::data_exchange;
        report(PeerState::completed);
        actions.emplace_back(action::Completed{});
        // Our request goes first: older ship-go ignores control messages once it is complete.
        send(msg::encode(msg::AccessMethodsRequest{}));
        arm(TimerKind::access_methods, now, config.timers.access_methods);
    }

    void answer_access_methods_request() {
        send(msg::encode(msg::AccessMethods{config.own_ship_id, false, {}}));
    }

    void on_access_methods(const msg::AccessMethods& am, TimePoint now) {
        if (am.id.empty())
            return error_close(now, "access methods: the peer's accessMethods has an empty id");
        if (config.known_peer_ship_id && *config.known_peer_ship_id != am.id)
            return error_close(now, "access methods: the peer's SHIP ID '" + util::cut_utf8(am.id, 64) +
                                        "' differs from the known '" + *config.known_peer_ship_id + "'");
        cancel(TimerKind::access_methods);
        if (peer_ship_id != am.id) {
            peer_ship_id = am.id;
            actions.emplace_back(action::ShipIdLearned{am.id});
        }
    }

    void on_data(const msg::Data& d) {
        if (d.protocol_id != msg::protocol_id_spine)
            return notice("data: ignored a message with protocolId '" + util::cut_utf8(d.protocol_id, 32) +
                          "'");
        if (d.payload.empty() || d.payload.front() != '{')
            return notice("data: ignored a message whose payload is not an object");
        actions.emplace_back(action::DataReceived{d.payload});
    }

    void on_data_exchange(const msg::Message& m, TimePoint now) {
        if (std::holds_alternative<msg::AccessMethodsRequest>(m)) return answer_access_methods_request();
        if (const auto* am = std::get_if<msg::AccessMethods>(&m)) return on_access_methods(*am, now);
        if (const auto* d = std::get_if<msg::Data>(&m)) return on_data(*d);
        notice("data exchange: ignored " + std::string(msg::name(m)));
    }

    // connectionClose announce with maxTime; the WebSocket closes 4001 on confirm or when maxTime runs out.
    void announce_close(TimePoint now, std::string_view ship_reason, std::string ws_reason) {
        cancel_all();
        send(msg::encode(msg::ConnectionClose{
            msg::ClosePhase::announce, static_cast<std::uint64_t>(config.timers.close_max_time.count()),
            std::string(ship_reason)}));
        close_code = close_code_ship;
        close_reason = std::move(ws_reason);
        state = State::close_wait_confirm;
        arm(TimerKind::close, now, config.timers.close_max_time);
    }

    void error_close(TimePoint now, const std::string& reason) {
        report(PeerState::error, reason);
        announce_close(now, msg::close_reason_unspecific, reason);
    }

    void on_close_message(const msg::ConnectionClose& c) {
        if (c.phase == msg::ClosePhase::confirm) {
            if (state == State::close_wait_confirm)
                return close_transport(close_code, close_reason, close_reason);
            return notice("connectionClose confirm ignored: we announced no close");
        }
        send(msg::encode(msg::ConnectionClose{msg::ClosePhase::confirm, std::nullopt, std::nullopt}));
        // Both sides announced at once: ours is still owed its confirm (SHIP 13.4.7: the WebSocket closes
        // on the confirm or after maxTime), and the peer, having ours, sends it. Closing now would put our
        // 4001 on the wire in the same instant as our announce.
        if (state == State::close_wait_confirm)
            return notice(
                "connectionClose announce from the peer while ours waits for its confirm: confirmed "
                "theirs, still waiting for ours");
        const std::string reason = "connection closed by the peer" +
                                   (c.reason ? " (" + util::cut_utf8(*c.reason, 64) + ")" : std::string());
        if (state != State::data_exchange && state != State::close_wait_confirm)
            report(PeerState::error, reason + " in " + std::string(state_text(state)));
        close_transport(close_code_ship, reason, reason,
                        "SHIP connectionClose" +
                            (c.reason ? ", reason " + util::cut_utf8(*c.reason, 64) : std::string()));
    }

    // ---- input dispatch ------------------------------------------------------------------------------

    // A frame or message that could not be understood, judged by the state it arrived in.
    void on_bad_input(const std::string& what, TimePoint now) {
        switch (state) {
        case State::hello_ready_listen:
        case State::hello_pending_listen:
            return hello_abort(now, "hello: " + what);
        case State::prot_client_listen_choice:
        case State::prot_server_listen_proposal:
        case State::prot_server_listen_confirm:
            return protocol_error(msg::HandshakeError::unexpected_message, "protocol handshake: " + what);
        case State::pin_check_listen:
            return fail(close_code_ship, "PIN: " + what);
        default:
            // TC_SHIP_MSG_001/002: in data exchange a bad message is dropped and the link keeps working.
            return notice("ignored a bad message in " + std::string(state_text(state)) + ": " + what);
        }
    }

    void receive(std::span<const std::uint8_t> message, TimePoint now) {
        switch (state) {
        case State::idle:
        case State::closed:
            return;
        case State::hello_abort_done:
            return notice("ignored a message after hello abort");
        case State::cmi_client_wait:
        case State::cmi_server_wait:
            return on_cmi(message, now);
        default:
            break;
        }
        auto frame = parse_frame(message);
        if (const auto* e = std::get_if<FrameError>(&frame)) return on_bad_input(e->reason, now);
        auto decoded = msg::decode(std::get<Frame>(frame));
        if (const auto* e = std::get_if<msg::DecodeError>(&decoded)) return on_bad_input(e->reason, now);
        const msg::Message& m = std::get<msg::Message>(decoded);

        if (const auto* c = std::get_if<msg::ConnectionClose>(&m)) return on_close_message(*c);
        switch (state) {
        case State::hello_ready_listen:
            return on_hello_ready_listen(m, now);
        case State::hello_pending_listen:
            return on_hello_pending_listen(m, now);
        case State::prot_client_listen_choice:
        case State::prot_server_listen_proposal:
        case State::prot_server_listen_confirm:
            return on_protocol(m, now);
        case State::pin_check_listen:
            return on_pin(m, now);
        case State::data_exchange:
            return on_data_exchange(m, now);
        case State::close_wait_confirm:
            if (std::holds_alternative<msg::AccessMethodsRequest>(m)) return answer_access_methods_request();
            return notice("closing: ignored " + std::string(msg::name(m)));
        default:
            return;
        }
    }

    // Fires due timers one at a time, earliest first, each seeing the state the previous one left. This ends:
    // no timer restarts itself, and every chain (prolongation request -> reply -> abort -> close) is finite.
    void handle_timeout(TimePoint now) {
        while (const auto kind = timers.due(now)) {
            cancel(*kind);
            fire(*kind, now);
        }
    }

    void fire(TimerKind kind, TimePoint now) {
        const auto& t = config.timers;
        switch (kind) {
        case TimerKind::cmi:
            return fail(close_code_ship, "CMI: no CMI from the peer within " + ms_text(t.cmi));
        case TimerKind::hello_wait_for_ready:
            if (held_handshake)
                return hello_abort(now,
                                   "hello: no trust decision before our deadline (the peer had moved on to "
                                   "the protocol handshake)");
            return hello_abort(now, "hello: the peer did not become ready before our announced deadline");
        case TimerKind::hello_send_prolongation:
            send_hello(msg::HelloPhase::pending, std::nullopt, true);
            // The reply is due by the peer's deadline, however late this timer ran.
            timers.start(TimerKind::hello_prolongation_reply, std::max(peer_deadline, now));
            return;
        case TimerKind::hello_prolongation_reply:
            return hello_abort(now, "hello: the peer did not answer our prolongation request");
        case TimerKind::protocol_handshake: {
            return protocol_error(msg::HandshakeError::timeout,
                                  "protocol handshake: no " + std::string(awaited_handshake_message()) +
                                      " within " + ms_text(t.protocol_handshake));
        }
        case TimerKind::pin:
            return fail(close_code_ship, "PIN: no connectionPinState within " + ms_text(t.pin));
        case TimerKind::access_methods:
            return error_close(now,
                               "access methods: no accessMethods reply within " + ms_text(t.access_methods));
        case TimerKind::close:
            if (state == State::hello_abort_done)
                return close_transport(close_code_hello_rejected, hello_rejected_reason, close_reason);
            return close_transport(close_code, close_reason, close_reason);
        }
    }

    void transport_closed(std::string_view reason) {
        const std::string why = "the peer closed the connection (" + util::cut_utf8(reason, 96) + ")";
        switch (state) {
        case State::closed:
            return;
        case State::hello_ready_listen:
            report(PeerState::remote_denied_trust, why + " while we waited ready for its trust");
            break;
        case State::data_exchange:
        case State::close_wait_confirm:
        case State::hello_abort_done:
        case State::idle:
            break;
        default:
            report(PeerState::error, why + " in " + std::string(state_text(state)));
            break;
        }
        finish(why);
    }

    void close(std::string_view reason, TimePoint now) {
        switch (state) {
        case State::closed:
        case State::hello_abort_done:
        case State::close_wait_confirm:
            return;
        case State::data_exchange:
            return announce_close(now, msg::close_reason_unspecific, std::string(reason));
        default:
            return close_transport(close_code_ship, reason, std::string(reason));
        }
    }

    void leave(std::string_view reason) {
        switch (state) {
        case State::closed:
        case State::hello_abort_done:
            return;
        case State::data_exchange:
            send(msg::encode(msg::ConnectionClose{
                msg::ClosePhase::announce, static_cast<std::uint64_t>(config.timers.close_max_time.count()),
                std::string(msg::close_reason_unspecific)}));
            return close_transport(close_code_ship, reason, std::string(reason));
        case State::close_wait_confirm: // announced already: only the wait for the confirm is cut short
            return close_transport(close_code, close_reason, close_reason);
        default:
            return close_transport(close_code_ship, reason, std::string(reason));
        }
    }

    void remove_trust(TimePoint now) {
        switch (state) {
        case State::closed:
        case State::hello_abort_done:
        case State::close_wait_confirm:
            return;
        case State::data_exchange:
            return announce_close(now, msg::close_reason_removed_connection, "trust removed");
        default:
            return close_transport(close_code_trust_removed, "trust removed", "trust removed");
        }
    }

    std::optional<std::string> send_data(std::string_view plain_json) {
        if (state != State::data_exchange)
            return "not in data exchange (state " + std::string(state_text(state)) + ")";
        auto bytes = msg::encode_data(plain_json);
        if (const auto* e = std::get_if<msg::EncodeError>(&bytes)) return e->reason;
        send(std::move(std::get<Bytes>(bytes)));
        return std::nullopt;
    }

    std::optional<std::string> send_data_message(Bytes message) {
        if (state != State::data_exchange)
            return "not in data exchange (state " + std::string(state_text(state)) + ")";
        send(std::move(message));
        return std::nullopt;
    }
};

Connection::Connection(ConnectionConfig config) {
    if (config.own_ship_id.empty() || !is_safe_control_string(config.own_ship_id))
        throw std::invalid_argument("SHIP ID '" + config.own_ship_id +
                                    "' is empty or holds characters a control message cannot carry");
    impl_ = std::make_unique<Impl>(std::move(config));
}

Connection::~Connection() = default;
Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;

void Connection::open(Role role, TimePoint now) {
    impl_->open(role, now);
}
void Connection::receive(std::span<const std::uint8_t> message, TimePoint now) {
    impl_->receive(message, now);
}
std::optional<TimePoint> Connection::next_deadline() const {
    return impl_->timers.earliest();
}
void Connection::handle_timeout(TimePoint now) {
    impl_->handle_timeout(now);
}
void Connection::transport_closed(std::string_view reason) {
    impl_->transport_closed(reason);
}
void Connection::approve(TimePoint now) {
    impl_->approve(now);
}
void Connection::deny(TimePoint now, std::string_view reason) {
    impl_->deny(now, reason);
}
std::optional<std::string> Connection::send_data(std::string_view plain_json) {
    return impl_->send_data(plain_json);
}
std::optional<std::string> Connection::send_data_message(Bytes message) {
    return impl_->send_data_message(std::move(message));
}
void Connection::close(std::string_view reason, TimePoint now) {
    impl_->close(reason, now);
}
void Connection::leave(std::string_view reason) {
    impl_->leave(reason);
}
void Connection::remove_trust(TimePoint now) {
    impl_->remove_trust(now);
}
std::vector<Action> Connection::take_actions() {
    return std::exchange(impl_->actions, {});
}
bool Connection::awaiting_trust() const {
    return impl_->state == State::hello_pending_listen;
}
bool Connection::in_data_exchange() const {
    return impl_->state == State::data_exchange;
}
bool Connection::closed() const {
    return impl_->state == State::closed;
}
std::string_view Connection::state_name() const {
    return state_text(impl_->state);
}
std::optional<Role> Connection::role() const {
    return impl_->role;
}

} // namespace ship
