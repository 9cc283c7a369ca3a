// lib/net's Link: one libwebsockets wsi (TLS, `ship` subprotocol) behind the net::Link interface. Internal to
// lib/net: owners see only net::Link.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/link.hpp"
#include "net/timer.hpp"

struct lws;

namespace ship::net {

namespace detail {
struct StrandCore;
struct LinkOps;
class Endpoint;
} // namespace detail

// The Link over a libwebsockets wsi. Made only by lib/net (Server, Client); LinkOps (net/detail.hpp) is
// its side of lws' events.
class LwsLink final : public Link {
public:
    ~LwsLink() override; // a still-open Link is cut with 1001 "going away", without callbacks

    std::uint64_t id() const override { return id_; }
    ship::Role role() const override { return role_; }
    const std::string& peer_ski() const override { return peer_ski_; }
    const std::string& peer_fingerprint() const override { return peer_fingerprint_; }
    const std::string& remote_address() const override { return remote_; }
    const std::string& path() const override { return path_; }
    bool is_open() const override { return state_ == State::open; }
    bool is_closed() const override { return state_ == State::closed; }
    bool send(std::span<const std::uint8_t> message) override;
    std::size_t queued_messages() const override { return send_queue_.size(); }
    void close(std::uint16_t code, std::string_view reason) override;
    void close_at_once(std::uint16_t code, std::string_view reason) override;
    void abort(std::string_view reason) override;
    void probe(std::chrono::milliseconds bound) override;
    void set_handler(LinkHandler* handler) override { handler_ = handler; }

private:
    friend struct detail::LinkOps;
    enum class State { connecting, open, closing, closed };

    LwsLink(detail::StrandCore& core, detail::Endpoint& endpoint, ship::Role role, LinkHandler* handler);

    detail::StrandCore* core_;
    detail::Endpoint* endpoint_; // null once the endpoint is gone
    std::uint64_t id_;
    ship::Role role_;
    LinkHandler* handler_;
    State state_ = State::connecting;
    lws* wsi_ = nullptr;
    std::string peer_ski_, remote_, path_;
    std::string peer_fingerprint_;

    // receive side
    std::vector<std::uint8_t> rx_;
    bool in_message_ = false;

    // send side: each entry has LWS_PRE bytes of headroom in front of the message
    struct Outgoing {
        std::vector<unsigned char> buffer;
        std::size_t sent = 0; // payload bytes already handed to lws (fragmented sending)
    };
    std::deque<Outgoing> send_queue_;

    // closing and the reason reported in on_closed
    bool close_requested_ = false;
    CloseInfo close_info_;
    bool have_close_info_ = false;

    // client dial
    std::string host_, expected_ski_, dial_path_;
    std::uint16_t port_ = 0;
    bool retried_root_ = false;
    std::string tls_failure_;

    std::chrono::steady_clock::time_point last_valid_{}; // opened, or the last PONG
    bool ping_requested_ = false;                        // the next writable callback sends a PING
    bool probing_ = false;                               // a probe's PONG is awaited
    bool aborting_ = false;                              // abort(): the wsi's callback answers -1
    bool at_once_ = false; // close_at_once(): no wait for the peer's close frame
    Timer timer_;          // connect timeout, then a probe's bound
    Timer deliver_;        // deferred on_closed for closes that happen without an lws callback
};

} // namespace ship::net
