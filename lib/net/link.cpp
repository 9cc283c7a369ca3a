// LwsLink: sending, closing, probing; and LinkOps, its side of lws events (receive, writeable, close, gone).
#include "net/lws_link.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include <spdlog/spdlog.h>

#include "net/client.hpp"
#include "net/detail.hpp"
#include "net/tls_setup.hpp"
#include "util/utf8.hpp"

namespace ship::net {

namespace {

std::string cut_reason(std::string_view reason) {
    return util::cut_utf8(reason, util::max_close_reason_bytes);
}

void* id_pointer(std::uint64_t id) {
    return reinterpret_cast<void*>(static_cast<std::uintptr_t>(id));
}

void set_close_frame(lws* wsi, std::uint16_t code, const std::string& reason) {
    std::string text = cut_reason(reason);
    lws_close_reason(wsi, static_cast<lws_close_status>(code), reinterpret_cast<unsigned char*>(text.data()),
                     text.size());
}

} // namespace

std::string_view to_string(CloseInfo::By by) {
    switch (by) {
    case CloseInfo::By::local:
        return "local";
    case CloseInfo::By::peer:
        return "peer";
    case CloseInfo::By::transport:
        return "transport";
    }
    return "transport";
}

LwsLink::LwsLink(detail::StrandCore& core, detail::Endpoint& endpoint, ship::Role role, LinkHandler* handler)
    : core_(&core)
    , endpoint_(&endpoint)
    , id_(core.new_id())
    , role_(role)
    , handler_(handler)
    , timer_(core, Timer::Kind::shutdown)
    , deliver_(core, Timer::Kind::shutdown) {}

LwsLink::~LwsLink() {
    detail::LinkOps::forget(*this);
    if (!wsi_) return;
    if (state_ == State::open || state_ == State::closing) {
        if (have_close_info_ && close_info_.by == CloseInfo::By::local)
            set_close_frame(wsi_, close_info_.code, close_info_.reason);
        else
            set_close_frame(wsi_, close_going_away, "going away");
    }
    detail::LinkOps::kill_wsi(wsi_);
    wsi_ = nullptr;
}

bool LwsLink::send(std::span<const std::uint8_t> message) {
    SHIP_NET_ASSERT_ON_STRAND(*core_);
    if (state_ != State::open || !wsi_) return false;
    Outgoing out;
    out.buffer.resize(LWS_PRE + message.size());
    if (!message.empty()) std::memcpy(out.buffer.data() + LWS_PRE, message.data(), message.size());
    send_queue_.push_back(std::move(out));
    lws_callback_on_writable(wsi_);
    return true;
}

void LwsLink::close(std::uint16_t code, std::string_view reason) {
    SHIP_NET_ASSERT_ON_STRAND(*core_);
    if (state_ == State::closed || close_requested_) return;
    if (state_ == State::connecting) {
        detail::LinkOps::end_now(*this, CloseInfo{code, cut_reason(reason), CloseInfo::By::local, false});
        return;
    }
    close_requested_ = true;
    state_ = State::closing;
    if (!have_close_info_) {
        close_info_ = CloseInfo{code, cut_reason(reason), CloseInfo::By::local, true};
        have_close_info_ = true;
    }
    if (!wsi_) return;
    lws_callback_on_writable(wsi_);
    // Bound: a peer that stops reading would otherwise keep our close frame (and the socket) forever. Our
    // libev timer, not lws_set_timeout: lws 4.1 keeps those in one sorted list, so 10 000 links closing at
    // once (SIGTERM) cost O(n²) (perf: 68 % of the stop in lws_dll2_add_sorted).
    probing_ = false; // a late pong must not cancel this bound (it shares timer_ with the probe)
    const auto bound = endpoint_ ? endpoint_->settings.close_bound : std::chrono::seconds(5);
    timer_.start(std::chrono::duration_cast<std::chrono::microseconds>(bound), [this] {
        if (wsi_) detail::LinkOps::close_wsi(wsi_);
    });
}

void LwsLink::close_at_once(std::uint16_t code, std::string_view reason) {
    SHIP_NET_ASSERT_ON_STRAND(*core_);
    if (state_ == State::closed || close_requested_) return;
    at_once_ = true;
    close(code, reason);
}

void LwsLink::abort(std::string_view reason) {
    SHIP_NET_ASSERT_ON_STRAND(*core_);
    if (state_ == State::closed) return;
    CloseInfo info{close_no_close_frame, cut_reason(reason), CloseInfo::By::local,
                   state_ != State::connecting};
    if (state_ == State::connecting || !wsi_) {
        detail::LinkOps::end_now(*this, std::move(info));
        return;
    }
    close_info_ = std::move(info);
    have_close_info_ = true;
    close_requested_ = true;
    aborting_ = true;
    state_ = State::closing;
    send_queue_.clear();
    // Still attached: lws reports CLOSED for it and wsi_gone delivers the reason set here. From inside one
    // of its own callbacks the close happens when that callback returns -1 (as OpenEEBUS refuses a link).
    detail::LinkOps::close_wsi(wsi_);
}

void LwsLink::probe(std::chrono::milliseconds bound) {
    SHIP_NET_ASSERT_ON_STRAND(*core_);
    if (state_ != State::open || !wsi_ || probing_) return;
    probing_ = true;
    detail::LinkOps::send_ping(*this);
    timer_.start(std::chrono::duration_cast<std::chrono::microseconds>(bound), [this, bound] {
        probing_ = false;
        detail::LinkOps::hang_up(*this, "no pong within " + std::to_string(bound.count()) + " ms of a probe");
    });
}

namespace detail {

// ---- LinkOps: the Link's side of lws events ----

std::shared_ptr<LwsLink> LinkOps::make(Endpoint& endpoint, LinkHandler* handler) {
    std::shared_ptr<LwsLink> link(new LwsLink(endpoint.core, endpoint, endpoint.role, handler));
    endpoint.core.links.emplace(link->id_, link.get());
    endpoint.links.insert(link.get());
    return link;
}

void LinkOps::attach(LwsLink& link, lws* wsi) {
    link.wsi_ = wsi;
    lws_set_opaque_user_data(wsi, id_pointer(link.id_));
}

LwsLink* LinkOps::from_wsi(StrandCore& core, lws* wsi) {
    LwsLink* link = core.find_link(wsi);
    return link && link->wsi_ == wsi ? link : nullptr;
}

void LinkOps::forget(LwsLink& link) {
    if (!link.core_) return;
    link.core_->links.erase(link.id_);
    if (link.endpoint_) link.endpoint_->links.erase(&link);
    link.endpoint_ = nullptr;
}

void LinkOps::orphan(LwsLink& link) {
    if (link.wsi_) kill_wsi(link.wsi_);
    link.wsi_ = nullptr;
    link.state_ = LwsLink::State::closed;
    link.handler_ = nullptr;
    link.timer_.cancel();
    link.deliver_.cancel();
}

void LinkOps::close_wsi(lws* wsi) {
    // At once where lws allows it (any wsi but one being serviced right now): an asynchronous kill waits
    // for lws' own timer, and a strand that finishes first would leave the socket open until teardown.
    auto* core = static_cast<StrandCore*>(lws_context_user(lws_get_context(wsi)));
    const bool serviced =
        core && std::find(core->in_service.begin(), core->in_service.end(), wsi) != core->in_service.end();
    lws_set_timeout(wsi, PENDING_TIMEOUT_KILLED_BY_PARENT, serviced ? LWS_TO_KILL_ASYNC : LWS_TO_KILL_SYNC);
}

void LinkOps::kill_wsi(lws* wsi) {
    // Detached first: whatever lws still reports for this wsi finds no Link.
    lws_set_opaque_user_data(wsi, nullptr);
    close_wsi(wsi);
}

int LinkOps::established(LwsLink& link, lws* wsi) {
    auto keep = link.shared_from_this();
    link.timer_.cancel();
    if (link.role_ == ship::Role::client) {
        // Belt and braces: the verify callback already refused any other certificate.
        const auto* verdict = verdict_of(lws_get_ssl(wsi));
        if (!verdict || !verdict->ok || verdict->ski != link.expected_ski_) {
            link.close_info_ = CloseInfo{close_no_close_frame, "server certificate was not verified",
                                         CloseInfo::By::transport, false};
            link.have_close_info_ = true;
            return -1;
        }
        link.path_ = link.dial_path_;
    }
    link.state_ = LwsLink::State::open;
    link.core_->keep_alive->watch(link);
    spdlog::debug("WebSocket {} {} open (SKI {})", link.id_, link.remote_, link.peer_ski_);
    if (link.handler_ && link.core_->owner_calls_allowed()) link.handler_->on_open(link);
    return link.aborting_ ? -1 : 0;
}

int LinkOps::receive(LwsLink& link, lws* wsi, const void* in, std::size_t len) {
    if (link.state_ != LwsLink::State::open) return 0; // closing: what still arrives is not delivered
    auto fail = [&](std::uint16_t code, std::string reason) {
        spdlog::info("WebSocket {} {}: closing {} \"{}\"", link.id_, link.remote_, code, reason);
        link.close_info_ = CloseInfo{code, reason, CloseInfo::By::local, true};
        link.have_close_info_ = true;
        link.close_requested_ = true;
        link.state_ = LwsLink::State::closing;
        link.send_queue_.clear();
        link.rx_.clear();
        set_close_frame(wsi, code, reason);
        return -1;
    };
    if (!link.in_message_) {
        if (!lws_frame_is_binary(wsi))
            return fail(close_unsupported_data, "text frames are not allowed in SHIP");
        link.rx_.clear();
        link.in_message_ = true;
    }
    const std::size_t limit =
        link.endpoint_ ? link.endpoint_->settings.max_message_bytes : ship_max_message_bytes;
    // Refuse as soon as the frame header announces too much, without buffering it first.
    const std::size_t announced = link.rx_.size() + len + lws_remaining_packet_payload(wsi);
    if (announced > limit)
        return fail(close_message_too_big, "message larger than " + std::to_string(limit) + " bytes");
    const auto* bytes = static_cast<const std::uint8_t*>(in);
    if (len) link.rx_.insert(link.rx_.end(), bytes, bytes + len);
    if (!lws_is_final_fragment(wsi)) return 0;
    link.in_message_ = false;
    auto message = std::move(link.rx_);
    link.rx_ = {};
    auto keep = link.shared_from_this();
    if (link.handler_ && link.core_->owner_calls_allowed())
        link.handler_->on_message(link, std::move(message));
    return link.aborting_ ? -1 : 0;
}

int LinkOps::writeable(LwsLink& link, lws* wsi) {
    if (link.state_ != LwsLink::State::open && link.state_ != LwsLink::State::closing) return 0;
    if (link.ping_requested_ && link.state_ == LwsLink::State::open) {
        link.ping_requested_ = false;
        // A few payload bytes (the link id): some stacks drop empty pings.
        unsigned char ping[LWS_PRE + sizeof link.id_];
        std::memcpy(ping + LWS_PRE, &link.id_, sizeof link.id_);
        if (lws_write(wsi, ping + LWS_PRE, sizeof link.id_, LWS_WRITE_PING) < 0) {
            link.close_info_ =
                CloseInfo{close_no_close_frame, "write failed", CloseInfo::By::transport, true};
            link.have_close_info_ = true;
            return -1;
        }
        if (!link.send_queue_.empty() || link.close_requested_) lws_callback_on_writable(wsi);
        return 0;
    }
    if (!link.send_queue_.empty()) {
        auto& out = link.send_queue_.front();
        const std::size_t total = out.buffer.size() - LWS_PRE;
        const std::size_t fragment = link.endpoint_ ? link.endpoint_->settings.send_fragment_bytes : 0;
        std::size_t chunk = total - out.sent;
        if (fragment && chunk > fragment) chunk = fragment;
        const bool first = out.sent == 0, last = out.sent + chunk == total;
        const int flags = fragment ? lws_write_ws_flags(LWS_WRITE_BINARY, first, last) : LWS_WRITE_BINARY;
        // The LWS_PRE bytes in front of this fragment are already sent (or headroom): lws may overwrite them.
        const int n = lws_write(wsi, out.buffer.data() + LWS_PRE + out.sent, chunk,
                                static_cast<lws_write_protocol>(flags));
        if (n < 0) {
            link.close_info_ =
                CloseInfo{close_no_close_frame, "write failed", CloseInfo::By::transport, true};
            link.have_close_info_ = true;
            return -1;
        }
        out.sent += chunk;
        if (last) link.send_queue_.pop_front();
        if (!link.send_queue_.empty() || link.close_requested_) lws_callback_on_writable(wsi);
        return 0;
    }
    if (link.close_requested_ && link.at_once_) return -1; // no close reason set: lws closes without a frame
    if (link.close_requested_) {
        set_close_frame(wsi, link.close_info_.code, link.close_info_.reason);
        return -1; // lws sends the close frame, waits (bounded) for the peer's, then reports CLOSED
    }
    return 0;
}

void LinkOps::peer_close(LwsLink& link, const void* in, std::size_t len) {
    if (link.have_close_info_) return;
    const auto* bytes = static_cast<const std::uint8_t*>(in);
    CloseInfo info{1005, {}, CloseInfo::By::peer, true}; // 1005: the close frame carried no code
    if (len >= 2) {
        info.code = static_cast<std::uint16_t>((bytes[0] << 8) | bytes[1]);
        info.reason.assign(reinterpret_cast<const char*>(bytes) + 2, len - 2);
    }
    link.close_info_ = std::move(info);
    link.have_close_info_ = true;
    link.state_ = LwsLink::State::closing;
}

void LinkOps::pong(LwsLink& link) {
    link.last_valid_ = std::chrono::steady_clock::now();
    if (std::exchange(link.probing_, false)) link.timer_.cancel();
}

const PingPolicy& LinkOps::ping_policy(const LwsLink& link) {
    static const PingPolicy defaults;
    return link.endpoint_ ? link.endpoint_->settings.ping : defaults;
}

void LinkOps::send_ping(LwsLink& link) {
    if (!link.wsi_ || link.state_ != LwsLink::State::open) return;
    link.ping_requested_ = true;
    lws_callback_on_writable(link.wsi_);
}

void LinkOps::hang_up(LwsLink& link, std::string reason) {
    if (!link.wsi_ || link.state_ != LwsLink::State::open) return;
    if (!link.have_close_info_) {
        link.close_info_ = CloseInfo{close_no_close_frame, std::move(reason), CloseInfo::By::transport, true};
        link.have_close_info_ = true;
    }
    link.state_ = LwsLink::State::closing;
    link.send_queue_.clear();
    // Still attached: lws reports CLOSED for it, and wsi_gone delivers the reason set here.
    close_wsi(link.wsi_);
}

void LinkOps::wsi_gone(LwsLink& link, lws* wsi, bool connection_error, std::string_view error,
                       int http_status) {
    lws_set_opaque_user_data(wsi, nullptr);
    link.wsi_ = nullptr;
    const bool was_open = link.state_ == LwsLink::State::open || link.state_ == LwsLink::State::closing;

    if (connection_error && link.role_ == ship::Role::client && link.state_ == LwsLink::State::connecting &&
        !link.retried_root_ && link.dial_path_ != "/" && link.tls_failure_.empty() && http_status != 0 &&
        http_status != 101 && http_status != 503) {
        // SHIP: dial the path from mDNS; if the upgrade there fails, try "/" once.
        spdlog::info("WebSocket {} {}: upgrade at {} refused (HTTP {}); retrying at /", link.id_,
                     link.remote_, link.dial_path_, http_status);
        link.retried_root_ = true;
        link.dial_path_ = "/";
        LwsLink* target = &link;
        link.deliver_.start(std::chrono::microseconds(0), [target] {
            if (!LinkOps::connect(*target))
                LinkOps::end_now(*target,
                                 CloseInfo{close_no_close_frame, "cannot connect to " + target->remote_,
                                           CloseInfo::By::transport, false});
        });
        return;
    }

    if (!link.have_close_info_) {
        CloseInfo info{close_no_close_frame, {}, CloseInfo::By::transport, was_open};
        if (connection_error || !was_open) {
            if (!link.tls_failure_.empty())
                info.reason = link.tls_failure_;
            else if (http_status == 503)
                info.reason = "refused by the peer (HTTP 503)";
            else if (http_status > 0 && http_status != 101)
                info.reason = "upgrade refused (HTTP " + std::to_string(http_status) + ")";
            else if (!error.empty())
                info.reason = "dial failed: " + std::string(error);
            else
                info.reason = "connection ended before the WebSocket opened";
            // lws' own bounds on a dial's steps ("Timed out waiting SSL", "... waiting server reply").
            info.timed_out = connection_error && error.rfind("Timed out", 0) == 0;
        } else {
            // Our own hang-up (no pong) set its reason when it decided; this is the peer going away.
            info.reason = "peer closed without close frame";
        }
        link.close_info_ = std::move(info);
        link.have_close_info_ = true;
    }
    link.close_info_.was_open = was_open;
    if (link.close_info_.by == CloseInfo::By::transport)
        spdlog::info("WebSocket {} {} (SKI {}): {}", link.id_, link.remote_, link.peer_ski_,
                     link.close_info_.reason);
    link.state_ = LwsLink::State::closed;
    link.timer_.cancel();
    link.deliver_.cancel();
    deliver_closed(link);
}

void LinkOps::end_now(LwsLink& link, CloseInfo info) {
    if (link.state_ == LwsLink::State::closed) return;
    if (link.wsi_) kill_wsi(link.wsi_);
    link.wsi_ = nullptr;
    link.close_info_ = std::move(info);
    link.have_close_info_ = true;
    link.state_ = LwsLink::State::closed;
    link.timer_.cancel();
    LwsLink* target = &link; // the timer dies with the Link, so the callback never sees a dead one
    link.deliver_.start(std::chrono::microseconds(0), [target] { LinkOps::deliver_closed(*target); });
}

void LinkOps::deliver_closed(LwsLink& link) {
    auto keep = link.weak_from_this().lock();
    LinkHandler* handler = link.handler_;
    link.handler_ = nullptr; // exactly once
    forget(link);
    if (keep && handler && link.core_->owner_calls_allowed()) handler->on_closed(link, link.close_info_);
}

} // namespace detail

} // namespace ship::net
