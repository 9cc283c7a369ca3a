// What the Hub needs from the world around it, as two small ports: its loop (stop, finish, posts from other
// threads, timers) and its network (listen, dial). The daemon plugs in the strand and libwebsockets
// (hub/lws/); unit tests plug in a virtual clock and links of their own, and run the real Hub.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "hub/timers.hpp"
#include "net/client.hpp" // net::DialRequest
#include "net/link.hpp"
#include "net/server.hpp" // net::Admission and the listening hooks

namespace ship::hub {

// The loop the hub runs on. Every call but post() comes from the loop's own thread.
class HubLoop {
public:
    virtual ~HubLoop() = default;
    virtual const std::stop_token& stop_token() const = 0;
    // Runs once, on the loop, when stop is requested (net::Strand's stop contract).
    virtual void on_stop(std::function<void()> handler) = 0;
    // The hub's last connection has ended after a stop: the loop may return.
    virtual void finish() = 0;
    // From another thread (a name lookup's result); false, and `fn` dropped unrun, once stop was requested.
    virtual bool post(std::function<void()> fn) = 0;
    // Timers that stop with the loop (reconnects, double connections, pairing deadlines) ...
    virtual TimerService& timers() = 0;
    // ... and timers that still fire while it stops (the SMEs' bounds of a polite close).
    virtual TimerService& closing_timers() = 0;
};

// What the hub hears from its listening side.
struct ListenHooks {
    net::AdmissionHook admit; // a TLS handshake succeeded: accept (with a handler) or refuse
    net::TlsRefusalHook refuse_in_tls;
    std::function<void(const net::HandshakeFailure&)> on_handshake_failed;
};

// Where links come from. Links handed out (by admit or dial) follow net::Link's contract.
class Network {
public:
    virtual ~Network() = default;
    // Starts listening; throws std::runtime_error naming the address if that fails.
    virtual void listen(ListenHooks hooks) = 0;
    // A dial that reports on_open or on_closed to `handler`; null once stop was requested.
    virtual std::shared_ptr<net::Link> dial(const net::DialRequest& request, net::LinkHandler& handler) = 0;
    virtual std::uint16_t port() const = 0;
    virtual std::vector<std::string> addresses() const = 0; // what is bound: "127.0.0.1:4711"
    // The hub is going (its links are gone already): stop listening and dialling; no hook runs after it.
    virtual void release() = 0;
};

} // namespace ship::hub
