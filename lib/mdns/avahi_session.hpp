// One Avahi client on the event loop that never gives up: an absent avahi-daemon (or system bus) at start is
// waited for, a daemon that goes away is reconnected to, and every attached user is told so it can act anew.
#pragma once

#include <avahi-client/client.h>
#include <avahi-common/strlst.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mdns/loop_poll.hpp"
#include "net/event_loop.hpp"

namespace ship::mdns {

// Loop thread only. The publisher and the browser share one session (one client, one D-Bus connection).
class AvahiSession {
public:
    // Every client state, on the loop. AVAHI_CLIENT_S_RUNNING: the client may be used. AVAHI_CLIENT_FAILURE:
    // forget every object made from this client; the session frees them with it. FAILURE is also delivered
    // by stop() and to a user detaching while the client runs.
    using StateHandler = std::function<void(AvahiClient* client, AvahiClientState state)>;
    using Token = std::uint64_t;

    explicit AvahiSession(net::EventLoop& loop);
    ~AvahiSession();
    AvahiSession(const AvahiSession&) = delete;
    AvahiSession& operator=(const AvahiSession&) = delete;

    // Starts connecting, on a later loop turn. Connecting to the system bus and avahi-daemon uses a few
    // synchronous D-Bus calls (libavahi-client has no other way); both answer from this host in microseconds.
    void start();
    // Frees the client (its entry groups go, so the daemon sends goodbyes) and stops retrying.
    void stop();
    bool running() const { return started_; }

    // A new user hears the current state at once if the client runs.
    Token attach(StateHandler handler);
    void detach(Token token);

private:
    static void client_callback(AvahiClient* client, AvahiClientState state, void* self);
    void connect();
    void retry_in(std::chrono::milliseconds delay);
    void tell(AvahiClient* client, AvahiClientState state);

    LoopPoll poll_;
    std::map<Token, StateHandler> users_;
    Token next_token_ = 1;
    AvahiClient* client_ = nullptr;
    AvahiClientState state_ = AVAHI_CLIENT_CONNECTING;
    net::LoopTimer retry_;
    std::chrono::milliseconds backoff_;
    bool started_ = false;
    bool unreachable_logged_ = false, waiting_logged_ = false;
};

// TXT strings ⇄ Avahi's list, keeping the wire order (Avahi's list is stored last-first).
AvahiStringList* to_avahi_txt(const std::vector<std::string>& txt);
std::vector<std::string> from_avahi_txt(AvahiStringList* txt);

} // namespace ship::mdns
