// One Avahi client on its own threaded poll that never gives up: an absent avahi-daemon (or system bus) at
// start is waited for, and a daemon that goes away is reconnected to; the owner is told so it can
// publish/browse anew.
#pragma once

#include <avahi-client/client.h>
#include <avahi-common/strlst.h>
#include <avahi-common/thread-watch.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace ship::mdns {

class AvahiSession {
public:
    // Runs on the Avahi thread (lock held) for every client state. AVAHI_CLIENT_S_RUNNING: the client may be
    // used. AVAHI_CLIENT_FAILURE: forget every object made from this client; the session frees them with it.
    // FAILURE is also delivered by stop(), on the stopping thread, after the Avahi thread has ended.
    using StateHandler = std::function<void(AvahiClient* client, AvahiClientState state)>;

    AvahiSession(std::string role, StateHandler handler);
    ~AvahiSession();
    AvahiSession(const AvahiSession&) = delete;
    AvahiSession& operator=(const AvahiSession&) = delete;

    // Starts the Avahi thread, which connects. Throws std::runtime_error only if that thread cannot be made.
    void start();
    // Ends the Avahi thread and frees the client (its entry groups go, so the daemon sends goodbyes).
    void stop();

    // Runs fn with the Avahi lock held (or directly when not started). Never call it from the Avahi thread.
    void locked(const std::function<void()>& fn);

    bool running() const { return poll_ != nullptr; }

private:
    static void client_callback(AvahiClient* client, AvahiClientState state, void* self);
    static void timer_callback(AvahiTimeout* timeout, void* self);
    void connect();
    void retry_in(std::chrono::milliseconds delay);

    std::string role_;
    StateHandler handler_;
    AvahiThreadedPoll* poll_ = nullptr;
    AvahiClient* client_ = nullptr;
    AvahiTimeout* timer_ = nullptr;
    std::chrono::milliseconds backoff_;
    bool waiting_logged_ = false;
};

// TXT strings ⇄ Avahi's list, keeping the wire order (Avahi's list is stored last-first).
AvahiStringList* to_avahi_txt(const std::vector<std::string>& txt);
std::vector<std::string> from_avahi_txt(AvahiStringList* txt);

} // namespace ship::mdns
