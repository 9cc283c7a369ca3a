#include "mdns/avahi_session.hpp"

#include <avahi-common/error.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace ship::mdns {

namespace {
constexpr std::chrono::milliseconds first_backoff{500};
constexpr std::chrono::milliseconds max_backoff{30'000};
} // namespace

AvahiSession::AvahiSession(net::EventLoop& loop)
    : poll_(loop)
    , retry_(loop)
    , backoff_(first_backoff) {}

AvahiSession::~AvahiSession() {
    stop();
}

void AvahiSession::start() {
    if (started_) return;
    started_ = true;
    retry_in(std::chrono::milliseconds(0)); // never inside the caller: it may still be setting up
}

void AvahiSession::stop() {
    if (!started_) return;
    started_ = false;
    retry_.cancel();
    if (client_) {
        tell(client_, AVAHI_CLIENT_FAILURE);
        avahi_client_free(client_);
        client_ = nullptr;
    }
    state_ = AVAHI_CLIENT_CONNECTING;
}

AvahiSession::Token AvahiSession::attach(StateHandler handler) {
    const Token token = next_token_++;
    auto& stored = users_[token] = std::move(handler);
    if (client_ && state_ == AVAHI_CLIENT_S_RUNNING) stored(client_, state_);
    return token;
}

void AvahiSession::detach(Token token) {
    auto it = users_.find(token);
    if (it == users_.end()) return;
    auto handler = std::move(it->second);
    users_.erase(it);
    if (client_) handler(client_, AVAHI_CLIENT_FAILURE);
}

void AvahiSession::tell(AvahiClient* client, AvahiClientState state) {
    const auto tokens = [this] {
        std::vector<Token> t;
        for (const auto& [token, handler] : users_)
            t.push_back(token);
        return t;
    }();
    for (const Token token : tokens) // a user may detach another one (or itself) meanwhile
        if (auto it = users_.find(token); it != users_.end()) it->second(client, state);
}

void AvahiSession::retry_in(std::chrono::milliseconds delay) {
    retry_.start(delay, [this] { connect(); });
}

void AvahiSession::connect() {
    if (!started_) return;
    if (client_) avahi_client_free(client_); // a failed client: its users forgot its objects on FAILURE
    client_ = nullptr;
    int error = 0;
    // The state callback runs inside avahi_client_new already, before client_ is set: it gets the client.
    client_ =
        avahi_client_new(poll_.api(), AVAHI_CLIENT_NO_FAIL, &AvahiSession::client_callback, this, &error);
    if (client_) return;
    // Said once, then retried quietly: a host without a system bus would otherwise fill the log.
    if (!unreachable_logged_)
        spdlog::warn("mDNS: cannot reach the system bus ({}); announcing and browsing start once it is there",
                     avahi_strerror(error));
    else
        spdlog::debug("mDNS: system bus still unreachable ({}); retrying in {} ms", avahi_strerror(error),
                      backoff_.count());
    unreachable_logged_ = true;
    retry_in(backoff_);
    backoff_ = std::min(backoff_ * 2, max_backoff);
}

void AvahiSession::client_callback(AvahiClient* client, AvahiClientState state, void* self_ptr) {
    auto* self = static_cast<AvahiSession*>(self_ptr);
    self->state_ = state;
    switch (state) {
    case AVAHI_CLIENT_S_RUNNING:
        spdlog::info("mDNS: avahi-daemon is running");
        self->backoff_ = first_backoff;
        self->waiting_logged_ = self->unreachable_logged_ = false;
        break;
    case AVAHI_CLIENT_CONNECTING:
        if (!self->waiting_logged_)
            spdlog::warn("mDNS: avahi-daemon is not running; waiting for it to appear");
        self->waiting_logged_ = true;
        break;
    case AVAHI_CLIENT_FAILURE:
        spdlog::warn("mDNS: lost avahi-daemon ({}); reconnecting",
                     avahi_strerror(avahi_client_errno(client)));
        break;
    case AVAHI_CLIENT_S_REGISTERING:
    case AVAHI_CLIENT_S_COLLISION:
        break;
    }
    self->tell(client, state);
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
