#include "mdns/publisher.hpp"

#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <spdlog/spdlog.h>

#include <optional>

#include "mdns/avahi_session.hpp"

namespace ship::mdns {

namespace {
const std::string type_name(service_type);
} // namespace

struct Publisher::Impl {
    Impl(AvahiSession& s, LocalService local)
        : session(s)
        , service(std::move(local))
        , txt(encode_txt(service))
        , instance(service.ship_id) {}

    AvahiSession& session;
    std::optional<AvahiSession::Token> attached;
    std::function<void(const std::string&)> established_handler;

    LocalService service;
    std::vector<std::string> txt;
    std::string instance; // the SHIP ID until a collision made us pick another
    AvahiClient* client = nullptr;
    AvahiEntryGroup* group = nullptr;

    void on_client(AvahiClient* c, AvahiClientState state);
    void publish();
    void update_txt();
    void rename();
    static void group_callback(AvahiEntryGroup* g, AvahiEntryGroupState state, void* self);
};

void Publisher::Impl::on_client(AvahiClient* c, AvahiClientState state) {
    switch (state) {
    case AVAHI_CLIENT_S_RUNNING:
        client = c;
        publish();
        break;
    case AVAHI_CLIENT_S_REGISTERING:
    case AVAHI_CLIENT_S_COLLISION:
        // The daemon is (re)claiming its host name: our records would point at a name in flux. Withdraw them;
        // S_RUNNING follows and publishes again.
        client = c;
        if (group) avahi_entry_group_reset(group);
        break;
    case AVAHI_CLIENT_CONNECTING:
    case AVAHI_CLIENT_FAILURE:
        client = nullptr;
        group = nullptr; // freed with the client
        break;
    }
}

void Publisher::Impl::rename() {
    char* alternative = avahi_alternative_service_name(instance.c_str());
    spdlog::warn("mDNS: the service name '{}' is taken; announcing as '{}'", instance, alternative);
    instance = alternative;
    avahi_free(alternative);
}

void Publisher::Impl::publish() {
    if (!client) return;
    if (!group) group = avahi_entry_group_new(client, &Impl::group_callback, this);
    if (!group) {
        spdlog::error("mDNS: cannot create an Avahi entry group: {}",
                      avahi_strerror(avahi_client_errno(client)));
        return;
    }
    if (!avahi_entry_group_is_empty(group)) return;
    int result = AVAHI_ERR_COLLISION;
    for (int attempt = 0; attempt < 100 && result == AVAHI_ERR_COLLISION; ++attempt) {
        AvahiStringList* list = to_avahi_txt(txt);
        result = avahi_entry_group_add_service_strlst(
            group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, AvahiPublishFlags{}, instance.c_str(),
            type_name.c_str(), nullptr, nullptr, service.port, list);
        avahi_string_list_free(list);
        if (result == AVAHI_ERR_COLLISION) rename(); // a local service already holds the name
    }
    if (result >= 0) result = avahi_entry_group_commit(group);
    if (result < 0) {
        spdlog::error("mDNS: cannot announce '{}': {}", instance, avahi_strerror(result));
        avahi_entry_group_reset(group);
        return;
    }
    spdlog::info("mDNS: announcing '{}' ({}) on port {}", instance, type_name, service.port);
}

void Publisher::Impl::update_txt() {
    if (!group || avahi_entry_group_is_empty(group)) return; // publish() will use the new TXT
    AvahiStringList* list = to_avahi_txt(txt);
    const int result = avahi_entry_group_update_service_txt_strlst(group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
                                                                   AvahiPublishFlags{}, instance.c_str(),
                                                                   type_name.c_str(), nullptr, list);
    avahi_string_list_free(list);
    if (result >= 0) return;
    spdlog::warn("mDNS: cannot update the TXT of '{}' ({}); announcing it anew", instance,
                 avahi_strerror(result));
    avahi_entry_group_reset(group);
    publish();
}

void Publisher::Impl::group_callback(AvahiEntryGroup* g, AvahiEntryGroupState state, void* self_ptr) {
    auto* self = static_cast<Impl*>(self_ptr);
    switch (state) {
    case AVAHI_ENTRY_GROUP_ESTABLISHED:
        spdlog::info("mDNS: announced as '{}'", self->instance);
        if (self->established_handler) self->established_handler(self->instance);
        break;
    case AVAHI_ENTRY_GROUP_COLLISION:
        self->rename(); // another host on the link announces this name
        avahi_entry_group_reset(g);
        self->publish();
        break;
    case AVAHI_ENTRY_GROUP_FAILURE:
        spdlog::error("mDNS: announcing '{}' failed: {}", self->instance,
                      avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(g))));
        break;
    case AVAHI_ENTRY_GROUP_UNCOMMITED:
    case AVAHI_ENTRY_GROUP_REGISTERING:
        break;
    }
}

Publisher::Publisher(AvahiSession& session, LocalService service)
    : impl_(std::make_unique<Impl>(session, std::move(service))) {}

Publisher::~Publisher() {
    stop();
}

void Publisher::on_established(std::function<void(const std::string& instance)> handler) {
    impl_->established_handler = std::move(handler);
}

void Publisher::start() {
    if (impl_->attached) return;
    impl_->attached = impl_->session.attach(
        [impl = impl_.get()](AvahiClient* c, AvahiClientState state) { impl->on_client(c, state); });
}

void Publisher::stop() {
    if (!impl_->attached) return;
    // The group goes with it (avahi-daemon sends the goodbye).
    if (impl_->group) avahi_entry_group_free(impl_->group);
    impl_->group = nullptr;
    impl_->session.detach(*impl_->attached);
    impl_->attached.reset();
    spdlog::info("mDNS: withdrew the announcement '{}'", impl_->instance);
}

void Publisher::set_register(bool auto_register) {
    if (impl_->service.auto_register == auto_register) return;
    impl_->service.auto_register = auto_register;
    impl_->txt = encode_txt(impl_->service);
    impl_->update_txt();
}

void Publisher::set_service(LocalService service) {
    auto txt = encode_txt(service); // throws before anything changes
    if (service == impl_->service) return;
    const bool new_name = service.ship_id != impl_->service.ship_id || service.port != impl_->service.port;
    impl_->service = std::move(service);
    impl_->txt = std::move(txt);
    if (!new_name) {
        impl_->update_txt();
        return;
    }
    impl_->instance = impl_->service.ship_id;
    if (impl_->group) avahi_entry_group_reset(impl_->group);
    impl_->publish();
}

} // namespace ship::mdns
