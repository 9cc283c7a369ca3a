// lib/net internals shared by the strand, timers, links and endpoints: never included outside lib/net.
// Everything here is strand-confined (the loop thread); only EventLoop::post crosses threads.
#pragma once

#include <atomic>
#include <cassert>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <libwebsockets.h>

#include "net/client.hpp"
#include "net/event_loop.hpp"
#include "net/keep_alive.hpp"
#include "net/lws_link.hpp"
#include "net/strand.hpp"
#include "net/timer.hpp"

// Debug builds: a strand-only entry point called from another thread is a bug, found here.
#define SHIP_NET_ASSERT_ON_STRAND(core) assert((core).on_strand())

namespace ship::net::detail {

class Endpoint;

struct TimerCore {
    StrandCore* strand = nullptr; // null once the strand is gone
    Timer::Kind kind = Timer::Kind::normal;
    std::unique_ptr<LoopTimer> timer; // released with the strand if the Timer outlives it
};

struct StoppedWake {
    StrandCore* core;
    void operator()() const noexcept;
};

struct StrandCore {
    StrandCore(std::stop_token stop_token, StrandOptions strand_options);
    ~StrandCore();

    bool on_strand() const noexcept {
        return parked.load(std::memory_order_acquire) || loop.on_loop_thread();
    }
    // Owner callbacks (link handlers, timers) are allowed until run() returned.
    bool owner_calls_allowed() const { return !silenced; }
    bool normal_timers_allowed() const { return !silenced && !stop.stop_requested(); }

    void check_stop(); // strand: runs the stop handler once after stop was requested
    void finish();     // strand: run() returns after the current callback

    std::uint64_t new_id() { return next_id++; }
    LwsLink* find_link(lws* wsi) const; // the Link this wsi currently carries, or null
    Endpoint* find_endpoint(lws_vhost* vhost) const;

    // lws keeps pointers into these (retry policies, names, a provided SSL_CTX) until the context is gone.
    template <typename T>
    T* keep(std::shared_ptr<T> object) {
        kept.push_back(object);
        return object.get();
    }

    std::stop_token stop;
    StrandOptions options;
    // Declared first among the resources: everything below (lws, timers) lives on it and goes before it.
    EventLoop loop;
    lws_context* context = nullptr;  // libwebsockets on `loop` (a libev foreign loop); null once destroyed
    std::atomic<bool> parked{false}; // run() returned: the one thread cleaning up may make strand-only calls

    std::optional<TurnHook> turn_hook; // checks for a requested stop before each wait
    // See strand.cpp: keeps libwebsockets' own timer (one ev_timer for all its timeouts) armed no further
    // than `lws_heartbeat` ahead. Standard layout, sul first, so the lws callback gets back to the core.
    struct Heartbeat {
        lws_sorted_usec_list_t sul;
        StrandCore* core;
    } heartbeat{};
    std::optional<std::stop_callback<StoppedWake>> stop_callback;
    bool running = false, ran = false;
    bool stop_handled = false, finished = false, silenced = false;
    std::function<void()> stop_handler;
    std::unique_ptr<Timer> bound_timer;

    std::unordered_set<TimerCore*> timers;
    std::unique_ptr<KeepAlive> keep_alive; // pings for every open Link
    // The wsis whose lws callbacks are running (callbacks nest): those cannot be closed synchronously.
    std::vector<lws*> in_service;
    std::uint64_t next_id = 1;
    std::unordered_map<std::uint64_t, LwsLink*> links;
    std::unordered_map<std::uint64_t, Endpoint*> endpoints;
    std::vector<std::shared_ptr<void>> kept;
};

// What a verify callback learned about the peer's certificate, stored on the SSL (ex_data), so it lives
// exactly as long as the handshake's SSL and is found again later with lws_get_ssl(wsi).
struct PeerVerdict {
    bool ok = false;
    std::string ski;
    std::string fingerprint; // SHA-256 of the leaf's DER, upper-case hex (the Pairing Service's identity)
    std::string reason;
    bool quiet = false;          // refused by the owner (ServerConfig::refuse_in_tls), which logs it itself
    bool reported = false;       // a server handshake failure was reported to the owner
    bool handshake_done = false; // server: the TLS handshake completed; later alerts are no handshake failure
    std::string peer_alert;      // client: the fatal TLS alert the server sent us, if any
};

// A server or a client: one lws vhost and the Links on it.
class Endpoint {
public:
    Endpoint(StrandCore& core, ship::Role role, LinkSettings settings);
    virtual ~Endpoint(); // cuts its remaining Links silently, destroys the vhost
    Endpoint(const Endpoint&) = delete;
    Endpoint& operator=(const Endpoint&) = delete;

    // Server: after TLS, before the upgrade (LWS_CALLBACK_HTTP_CONFIRM_UPGRADE). lws return convention.
    virtual int confirm_upgrade(lws* wsi, const char* upgrade);
    // Server: a TLS handshake failed on our side (alert sent).
    virtual void handshake_failed(const std::string& remote, const std::string& reason);
    // Server, inside the verify callback once the certificate passed the SHIP rule: the owner's refusal of
    // this SKI before any HTTP byte (nullopt = go on).
    virtual std::optional<std::string> refuse_in_tls(const PeerVerdict& verdict, const std::string& remote);

    StrandCore& core;
    std::uint64_t id;
    ship::Role role;
    LinkSettings settings;
    bool tls12_only = false;
    std::string setup_error; // why lws refused to create the vhost, when our TLS setup was the reason
    lws_vhost* vhost = nullptr;
    const lws_retry_bo_t* retry = nullptr;
    std::unordered_set<LwsLink*> links;

protected:
    void make_retry_policy();
    void* vhost_user() const { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(id)); }
};

// The Link's side of lws events and owner calls; a struct of statics so Link keeps its members private.
struct LinkOps {
    static std::shared_ptr<LwsLink> make(Endpoint& endpoint, LinkHandler* handler);
    static void attach(LwsLink& link, lws* wsi);
    static LwsLink* from_wsi(StrandCore& core, lws* wsi);

    static void set_remote(LwsLink& link, std::string remote) { link.remote_ = std::move(remote); }
    static void set_peer_ski(LwsLink& link, std::string ski) { link.peer_ski_ = std::move(ski); }
    static void set_peer_fingerprint(LwsLink& link, std::string fingerprint) {
        link.peer_fingerprint_ = std::move(fingerprint);
    }
    static void set_path(LwsLink& link, std::string path) { link.path_ = std::move(path); }

    static int established(LwsLink& link, lws* wsi);
    static int receive(LwsLink& link, lws* wsi, const void* in, std::size_t len);
    static int writeable(LwsLink& link, lws* wsi);
    static void peer_close(LwsLink& link, const void* in, std::size_t len);
    static void pong(LwsLink& link);

    // Keep-alive (net/keep_alive.hpp)
    static void stamp_valid(LwsLink& link, std::chrono::steady_clock::time_point when) {
        link.last_valid_ = when;
    }
    static std::chrono::steady_clock::time_point last_valid(const LwsLink& link) { return link.last_valid_; }
    static const PingPolicy& ping_policy(const LwsLink& link);
    static void send_ping(LwsLink& link);
    // Ends an open Link from our side without a close frame (the peer stopped answering): reported by
    // transport with `reason` once lws has closed the socket.
    static void hang_up(LwsLink& link, std::string reason);
    // The wsi is going away (closed, connection error, destroyed); `error` and `http_status` from
    // CLIENT_CONNECTION_ERROR.
    static void wsi_gone(LwsLink& link, lws* wsi, bool connection_error, std::string_view error,
                         int http_status);

    // Client dial
    static void start_dial(LwsLink& link, const DialRequest& request, std::chrono::milliseconds timeout);
    static bool connect(LwsLink& link); // one lws_client_connect_via_info at the current dial path
    // Verify callback: 0 accepts the server certificate, 1 fails the handshake.
    static int server_certificate(LwsLink& link, const PeerVerdict& verdict);
    // TLS is up, the upgrade request is about to go out: last check of the server's SKI. lws convention.
    static int before_request(LwsLink& link, lws* wsi);

    // Ends the Link now from our side without an lws callback to wait for: the wsi (if any) is detached
    // and killed asynchronously, on_closed is delivered from a zero-delay timer.
    static void end_now(LwsLink& link, CloseInfo info);
    static void deliver_closed(LwsLink& link);
    static void forget(LwsLink& link); // leave the registries (endpoint gone or Link destroyed)
    static void orphan(LwsLink& link); // cut without callbacks (its endpoint is going away)
    static void kill_wsi(lws* wsi);    // detaches, then close_wsi
    static void close_wsi(lws* wsi);   // closes now unless lws is servicing it (then at its next timer)
};

// The one lws protocol callback of every vhost lib/net creates.
int lws_event(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len);
// Server and client vhosts: one protocol, `ship`, handled by lws_event.
extern const lws_protocols ship_protocols[];

// "192.0.2.1:4711" / "[fe80::1%eth0]:4711" for the peer of a socket; "" if unknown.
std::string peer_address_of_fd(int fd);
// The same form for a host (numeric, IPv6 possibly with zone) and port.
std::string display_address(std::string_view host, std::uint16_t port);
// The Host header for it: IPv6 in brackets with the zone's '%' written "%25" (RFC 6874).
std::string host_header_value(std::string_view host, std::uint16_t port);

} // namespace ship::net::detail
