#include "pairing_peer.hpp"

#include <signal.h>

#include "../hostile/scripted_peer.hpp"
#include "ship/messages.hpp"

namespace ship::test::pairing {

using hostile::ScriptedPeer;
using Clock = std::chrono::steady_clock;

namespace {

const msg::ConnectionHello* hello_of(const std::optional<msg::Message>& m) {
    return m ? std::get_if<msg::ConnectionHello>(&*m) : nullptr;
}

std::optional<msg::Message> decode(const std::vector<std::uint8_t>& bytes) {
    auto frame = parse_frame(bytes);
    if (!std::holds_alternative<Frame>(frame)) return std::nullopt;
    auto decoded = msg::decode(std::get<Frame>(frame));
    if (!std::holds_alternative<msg::Message>(decoded)) return std::nullopt;
    return std::get<msg::Message>(decoded);
}

} // namespace

namespace {
// shipd closing first makes our next write hit a closed socket: that must be an error, not SIGPIPE.
const bool sigpipe_ignored = [] {
    ::signal(SIGPIPE, SIG_IGN);
    return true;
}();
} // namespace

PendingPeer::PendingPeer(std::uint16_t port, tls::Identity identity, std::chrono::milliseconds waiting)
    : identity_(std::move(identity))
    , waiting_(waiting)
    , thread_([this, port] { run(port); }) {
    (void)sigpipe_ignored;
}

PendingPeer::~PendingPeer() {
    stop_ = true;
    thread_.join();
}

PeerOutcome PendingPeer::outcome() const {
    std::lock_guard lock(mutex_);
    return outcome_;
}

bool PendingPeer::wait(const std::function<bool(const PeerOutcome&)>& predicate,
                       std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return predicate(outcome_); });
}

void PendingPeer::update(const std::function<void(PeerOutcome&)>& change) {
    std::lock_guard lock(mutex_);
    change(outcome_);
    changed_.notify_all();
}

void PendingPeer::run(std::uint16_t port) {
    std::unique_ptr<ScriptedPeer> peer;
    auto end = [&] { update([](PeerOutcome& o) { o.ended = true; }); };
    try {
        peer = std::make_unique<ScriptedPeer>(port);
    } catch (const std::exception&) {
        return end();
    }
    local_port_ = peer->local_port();
    const bool tls = peer->start_tls(identity_);
    update([&](PeerOutcome& o) { o.tls_ok = tls; });
    if (!tls) return end();
    const int status = ScriptedPeer::http_status(peer->upgrade());
    update([&](PeerOutcome& o) { o.http_status = status; });
    if (status != 101) return end();
    if (!peer->exchange_cmi(10s)) return end();
    update([](PeerOutcome& o) { o.cmi = true; });
    const auto ready = msg::encode(msg::ConnectionHello{
        msg::HelloPhase::ready, static_cast<std::uint64_t>(waiting_.count()), std::nullopt});
    peer->send_ship(ready);
    while (!stop_) {
        auto frame = peer->read_frame(100ms);
        if (frame.opcode < 0) {
            if (peer->gone()) return end();
            continue;
        }
        if (frame.opcode == hostile::opcode_ping) {
            peer->send_frame(0xA, frame.payload);
            continue;
        }
        if (frame.opcode == hostile::opcode_close) {
            std::optional<std::uint16_t> code;
            std::string reason;
            if (frame.payload.size() >= 2) {
                code = static_cast<std::uint16_t>((frame.payload[0] << 8) | frame.payload[1]);
                reason.assign(frame.payload.begin() + 2, frame.payload.end());
            }
            update([&](PeerOutcome& o) {
                o.close_code = code;
                o.close_reason = reason;
            });
            frame.payload.resize(std::min<std::size_t>(frame.payload.size(), 2));
            peer->send_frame(hostile::opcode_close, frame.payload);
            return end();
        }
        if (frame.opcode != hostile::opcode_binary) continue;
        const auto message = decode(frame.payload);
        const auto* hello = hello_of(message);
        if (!hello) continue;
        switch (hello->phase) {
        case msg::HelloPhase::pending:
            // Granting every prolongation: the peer an attacker would write, holding its request open.
            if (hello->prolongation_request == true) {
                peer->send_ship(ready);
                update([](PeerOutcome& o) {
                    o.pending = true;
                    ++o.prolongations;
                });
            } else {
                update([](PeerOutcome& o) { o.pending = true; });
            }
            break;
        case msg::HelloPhase::ready: {
            update([](PeerOutcome& o) { o.approved = true; });
            const bool done = peer->finish_handshake(10s);
            update([&](PeerOutcome& o) { o.completed = done; });
            break;
        }
        case msg::HelloPhase::aborted:
            update([](PeerOutcome& o) { o.aborted = true; });
            break;
        }
    }
}

std::optional<std::chrono::milliseconds> complete_handshake(std::uint16_t port, const tls::Identity& identity,
                                                            std::chrono::milliseconds timeout,
                                                            std::string& why) {
    const auto start = Clock::now();
    try {
        ScriptedPeer peer(port);
        if (!peer.start_tls(identity)) {
            why = "TLS refused";
            return std::nullopt;
        }
        const std::string head = peer.upgrade();
        if (ScriptedPeer::http_status(head) != 101) {
            why = "upgrade refused: " + head.substr(0, head.find('\r'));
            return std::nullopt;
        }
        if (!peer.exchange_cmi(timeout)) {
            why = "no CMI";
            return std::nullopt;
        }
        if (!peer.hello_ready(timeout)) {
            why = "shipd did not answer hello ready";
            return std::nullopt;
        }
        if (!peer.finish_handshake(timeout)) {
            why = "the protocol handshake, PIN or access methods did not finish";
            return std::nullopt;
        }
    } catch (const std::exception& e) {
        why = e.what();
        return std::nullopt;
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

} // namespace ship::test::pairing
