#include "mdns/avahi_session.hpp"

#include <avahi-common/error.h>
#include <avahi-common/timeval.h>
#include <dbus/dbus.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

namespace ship::mdns {

namespace {
constexpr std::chrono::milliseconds first_backoff{500};
constexpr std::chrono::milliseconds max_backoff{30'000};
} // namespace

AvahiSession::AvahiSession(std::string role, StateHandler handler)
    : role_(std::move(role))
    , handler_(std::move(handler))
    , backoff_(first_backoff) {}

AvahiSession::~AvahiSession() {
    stop();
}

void AvahiSession::start() {
    if (poll_) return;
    // libdbus sets up its global locks lazily; two Avahi threads connecting at once would race there. Done
    // once, here, before any Avahi thread exists.
    static std::once_flag dbus_threads;
    std::call_once(dbus_threads, [] { dbus_threads_init_default(); });
    poll_ = avahi_threaded_poll_new();
    if (!poll_) throw std::runtime_error("mDNS " + role_ + ": cannot create the Avahi poll");
    // Connecting happens on the Avahi thread, so start() never blocks on D-Bus.
    timeval now{};
    const AvahiPoll* api = avahi_threaded_poll_get(poll_);
    timer_ = api->timeout_new(api, avahi_elapse_time(&now, 0, 0), &AvahiSession::timer_callback, this);
    if (!timer_ || avahi_threaded_poll_start(poll_) < 0) {
        if (timer_) api->timeout_free(timer_);
        timer_ = nullptr;
        avahi_threaded_poll_free(poll_);
        poll_ = nullptr;
        throw std::runtime_error("mDNS " + role_ + ": cannot start the Avahi thread");
    }
}

void AvahiSession::stop() {
    if (!poll_) return;
    avahi_threaded_poll_stop(poll_);
    if (client_) handler_(client_, AVAHI_CLIENT_FAILURE);
    const AvahiPoll* api = avahi_threaded_poll_get(poll_);
    api->timeout_free(timer_);
    timer_ = nullptr;
    if (client_) avahi_client_free(client_);
    client_ = nullptr;
    avahi_threaded_poll_free(poll_);
    poll_ = nullptr;
}

void AvahiSession::locked(const std::function<void()>& fn) {
    if (!poll_) {
        fn();
        return;
    }
    avahi_threaded_poll_lock(poll_);
    fn();
    avahi_threaded_poll_unlock(poll_);
}

void AvahiSession::timer_callback(AvahiTimeout* /*timeout*/, void* self) {
    static_cast<AvahiSession*>(self)->connect();
}

void AvahiSession::retry_in(std::chrono::milliseconds delay) {
    timeval when{};
    const AvahiPoll* api = avahi_threaded_poll_get(poll_);
    api->timeout_update(timer_, avahi_elapse_time(&when, static_cast<unsigned>(delay.count()), 0));
}

void AvahiSession::connect() {
    if (client_) avahi_client_free(client_); // a failed client: its objects were forgotten on FAILURE
    client_ = nullptr;
    int error = 0;
    // The state callback runs inside avahi_client_new already, before client_ is set: it gets the client.
    client_ = avahi_client_new(avahi_threaded_poll_get(poll_), AVAHI_CLIENT_NO_FAIL,
                               &AvahiSession::client_callback, this, &error);
    if (client_) return;
    spdlog::warn("mDNS {}: cannot reach the system bus ({}); retrying in {} ms", role_, avahi_strerror(error),
                 backoff_.count());
    retry_in(backoff_);
    backoff_ = std::min(backoff_ * 2, max_backoff);
}

void AvahiSession::client_callback(AvahiClient* client, AvahiClientState state, void* self_ptr) {
    auto* self = static_cast<AvahiSession*>(self_ptr);
    switch (state) {
    case AVAHI_CLIENT_S_RUNNING:
        spdlog::info("mDNS {}: avahi-daemon is running", self->role_);
        self->backoff_ = first_backoff;
        self->waiting_logged_ = false;
        break;
    case AVAHI_CLIENT_CONNECTING:
        if (!self->waiting_logged_)
            spdlog::warn("mDNS {}: avahi-daemon is not running; waiting for it to appear", self->role_);
        self->waiting_logged_ = true;
        break;
    case AVAHI_CLIENT_FAILURE:
        spdlog::warn("mDNS {}: lost avahi-daemon ({}); reconnecting", self->role_,
                     avahi_strerror(avahi_client_errno(client)));
        break;
    case AVAHI_CLIENT_S_REGISTERING:
    case AVAHI_CLIENT_S_COLLISION:
        break;
    }
    self->handler_(client, state);
    // A failed client stays dead; freeing it inside its own callback is unsafe, so the timer does it.
    if (state == AVAHI_CLIENT_FAILURE) self->retry_in(std::chrono::milliseconds(0));
}

AvahiStringList* to_avahi_txt(const std::vector<std::string>& txt) {
    AvahiStringList* list = nullptr;
    for (const auto& item : txt)
        list = avahi_string_list_add_arbitrary(list, reinterpret_cast<const std::uint8_t*>(item.data()),
                                               item.size());
    return list;
}

std::vector<std::string> from_avahi_txt(AvahiStringList* txt) {
    std::vector<std::string> out;
    for (AvahiStringList* item = txt; item; item = avahi_string_list_get_next(item))
        out.emplace_back(reinterpret_cast<const char*>(avahi_string_list_get_text(item)),
                         avahi_string_list_get_size(item));
    std::reverse(out.begin(), out.end());
    return out;
}

} // namespace ship::mdns
