#include "mdns/pairing_avahi.hpp"

#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <spdlog/spdlog.h>

#include <map>
#include <optional>
#include <tuple>

#include "mdns/pairing_service.hpp"

namespace ship::mdns {

namespace {
const std::string pairing_type(pairing_service_type);

// A resolver's TXT list holds the strings in wire order, head first (checked on the wire: avahi-publish
// "k1=1" "k2=2" "k3=3" is sent k1 k2 k3, and a resolver's list reads k1 k2 k3). from_avahi_txt is for lists
// built or parsed locally, which Avahi keeps last-first. Order matters here: txtvers must come first.
std::vector<std::string> resolved_txt(AvahiStringList* txt) {
    std::vector<std::string> out;
    for (AvahiStringList* item = txt; item; item = avahi_string_list_get_next(item))
        out.emplace_back(reinterpret_cast<const char*>(avahi_string_list_get_text(item)),
                         avahi_string_list_get_size(item));
    return out;
}
} // namespace

// ------------------------------------------------------------------------------------------------ browser

struct PairingBrowser::Impl {
    Impl(AvahiSession& s, Handler h)
        : session(s)
        , handler(std::move(h)) {}

    struct Key {
        AvahiIfIndex interface;
        AvahiProtocol protocol;
        std::string name, domain;
        auto operator<=>(const Key&) const = default;
    };
    struct Record {
        AvahiServiceResolver* resolver = nullptr;
        std::vector<std::string> txt; // last reported
    };

    AvahiSession& session;
    Handler handler;
    std::optional<AvahiSession::Token> attached;
    AvahiServiceBrowser* browser = nullptr;
    std::map<Key, Record> records;

    void on_client(AvahiClient* c, AvahiClientState state) {
        switch (state) {
        case AVAHI_CLIENT_S_RUNNING:
        case AVAHI_CLIENT_S_REGISTERING:
        case AVAHI_CLIENT_S_COLLISION:
            if (browser) return;
            browser = avahi_service_browser_new(c, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, pairing_type.c_str(),
                                                nullptr, AvahiLookupFlags{}, &Impl::browse_callback, this);
            if (!browser)
                spdlog::error("mDNS: cannot browse for {}: {}", pairing_type,
                              avahi_strerror(avahi_client_errno(c)));
            break;
        case AVAHI_CLIENT_CONNECTING:
        case AVAHI_CLIENT_FAILURE:
            browser = nullptr; // freed with the client, as are the resolvers
            records.clear();
            break;
        }
    }

    static void browse_callback(AvahiServiceBrowser* b, AvahiIfIndex interface, AvahiProtocol protocol,
                                AvahiBrowserEvent event, const char* name, const char*, const char* domain,
                                AvahiLookupResultFlags, void* self_ptr) {
        auto* self = static_cast<Impl*>(self_ptr);
        const Key key{interface, protocol, name ? name : "", domain ? domain : ""};
        switch (event) {
        case AVAHI_BROWSER_NEW: {
            if (self->records.count(key)) return;
            auto* r = avahi_service_resolver_new(avahi_service_browser_get_client(b), interface, protocol,
                                                 key.name.c_str(), pairing_type.c_str(), key.domain.c_str(),
                                                 AVAHI_PROTO_UNSPEC, AvahiLookupFlags{},
                                                 &Impl::resolve_callback, self);
            if (r) self->records[key].resolver = r;
            break;
        }
        case AVAHI_BROWSER_REMOVE: {
            auto it = self->records.find(key);
            if (it == self->records.end()) return;
            if (it->second.resolver) avahi_service_resolver_free(it->second.resolver);
            self->records.erase(it);
            break;
        }
        default:
            break;
        }
    }

    static void resolve_callback(AvahiServiceResolver* r, AvahiIfIndex, AvahiProtocol,
                                 AvahiResolverEvent event, const char* name, const char*, const char*,
                                 const char*, const AvahiAddress*, std::uint16_t, AvahiStringList* txt,
                                 AvahiLookupResultFlags, void* self_ptr) {
        auto* self = static_cast<Impl*>(self_ptr);
        auto it = self->records.begin();
        while (it != self->records.end() && it->second.resolver != r)
            ++it;
        if (it == self->records.end()) return;
        if (event == AVAHI_RESOLVER_FAILURE) {
            avahi_service_resolver_free(r);
            it->second.resolver = nullptr;
            return;
        }
        auto strings = resolved_txt(txt);
        if (spdlog::should_log(spdlog::level::debug)) {
            std::string shown;
            for (const auto& t : strings)
                shown += (shown.empty() ? "" : " ") + t;
            spdlog::debug("mDNS: pairing record '{}': {}", name ? name : "", shown);
        }
        // The same record over IPv4 and IPv6, or on two interfaces, is one request: report new content only.
        if (strings == it->second.txt) return;
        it->second.txt = strings;
        for (const auto& [key, record] : self->records)
            if (&record != &it->second && key.name == it->first.name && record.txt == strings) return;
        if (self->attached) self->handler(name ? name : "", strings);
    }
};

PairingBrowser::PairingBrowser(AvahiSession& session, Handler on_record)
    : impl_(std::make_unique<Impl>(session, std::move(on_record))) {}

PairingBrowser::~PairingBrowser() {
    stop();
}

void PairingBrowser::start() {
    if (impl_->attached) return;
    impl_->attached = impl_->session.attach(
        [impl = impl_.get()](AvahiClient* c, AvahiClientState state) { impl->on_client(c, state); });
}

void PairingBrowser::stop() {
    if (!impl_->attached) return;
    const auto token = *impl_->attached;
    impl_->attached.reset();
    for (auto& [key, record] : impl_->records)
        if (record.resolver) avahi_service_resolver_free(record.resolver);
    impl_->records.clear();
    if (impl_->browser) avahi_service_browser_free(impl_->browser);
    impl_->browser = nullptr;
    impl_->session.detach(token);
}

bool PairingBrowser::running() const {
    return impl_->attached.has_value();
}

// ------------------------------------------------------------------------------------------------ publisher

struct PairingPublisher::Impl {
    explicit Impl(AvahiSession& s)
        : session(s) {}

    AvahiSession& session;
    std::optional<AvahiSession::Token> attached;
    AvahiClient* client = nullptr;
    AvahiEntryGroup* group = nullptr;
    std::string instance;
    std::vector<std::string> txt;

    void on_client(AvahiClient* c, AvahiClientState state) {
        switch (state) {
        case AVAHI_CLIENT_S_RUNNING:
            client = c;
            publish();
            break;
        case AVAHI_CLIENT_S_REGISTERING:
        case AVAHI_CLIENT_S_COLLISION:
            client = c;
            if (group) avahi_entry_group_reset(group);
            break;
        case AVAHI_CLIENT_CONNECTING:
        case AVAHI_CLIENT_FAILURE:
            client = nullptr;
            group = nullptr;
            break;
        }
    }

    void rename() {
        char* alternative = avahi_alternative_service_name(instance.c_str());
        instance = alternative;
        avahi_free(alternative);
    }

    void publish() {
        if (!client) return;
        if (!group) group = avahi_entry_group_new(client, &Impl::group_callback, this);
        if (!group) return;
        avahi_entry_group_reset(group);
        int result = AVAHI_ERR_COLLISION;
        for (int attempt = 0; attempt < 100 && result == AVAHI_ERR_COLLISION; ++attempt) {
            AvahiStringList* list = to_avahi_txt(txt);
            result = avahi_entry_group_add_service_strlst(
                group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, AvahiPublishFlags{}, instance.c_str(),
                pairing_type.c_str(), nullptr, nullptr, pairing_announcement_port, list);
            avahi_string_list_free(list);
            if (result == AVAHI_ERR_COLLISION) rename();
        }
        if (result >= 0) result = avahi_entry_group_commit(group);
        if (result < 0) {
            spdlog::error("mDNS: cannot announce the pairing request '{}': {}", instance,
                          avahi_strerror(result));
            avahi_entry_group_reset(group);
            return;
        }
        spdlog::info("mDNS: announcing the pairing request '{}' ({})", instance, pairing_type);
    }

    static void group_callback(AvahiEntryGroup* g, AvahiEntryGroupState state, void* self_ptr) {
        auto* self = static_cast<Impl*>(self_ptr);
        if (state == AVAHI_ENTRY_GROUP_COLLISION) {
            self->rename();
            avahi_entry_group_reset(g);
            self->publish();
        }
    }
};

PairingPublisher::PairingPublisher(AvahiSession& session)
    : impl_(std::make_unique<Impl>(session)) {}

PairingPublisher::~PairingPublisher() {
    withdraw();
}

void PairingPublisher::announce(std::string instance, std::vector<std::string> txt) {
    impl_->instance = std::move(instance);
    impl_->txt = std::move(txt);
    if (!impl_->attached) {
        impl_->attached = impl_->session.attach(
            [impl = impl_.get()](AvahiClient* c, AvahiClientState state) { impl->on_client(c, state); });
        return; // attach reports S_RUNNING at once if the client runs: publish() follows from there
    }
    impl_->publish();
}

void PairingPublisher::withdraw() {
    if (!impl_->attached) return;
    if (impl_->group) avahi_entry_group_free(impl_->group); // the daemon sends the goodbye
    impl_->group = nullptr;
    impl_->client = nullptr;
    impl_->session.detach(*impl_->attached);
    impl_->attached.reset();
    spdlog::info("mDNS: withdrew the pairing request '{}'", impl_->instance);
}

bool PairingPublisher::announcing() const {
    return impl_->attached.has_value();
}

} // namespace ship::mdns
