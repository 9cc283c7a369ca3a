#include "mdns/browser.hpp"

#include <avahi-client/lookup.h>
#include <avahi-common/error.h>
#include <net/if.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <optional>
#include <stdexcept>

#include "mdns/address.hpp"
#include "mdns/avahi_session.hpp"
#include "mdns/merge.hpp"
#include "ship/ski.hpp"

namespace ship::mdns {

namespace {

const std::string type_name(service_type);

std::string canonical_own_ski(const std::string& ski) {
    if (ski.empty()) return {};
    auto canonical = ship::normalize_ski(ski);
    if (!canonical) throw std::invalid_argument("own SKI '" + ski + "' is not 40 hex digits");
    return *canonical;
}

std::string interface_name(AvahiIfIndex index) {
    char name[IF_NAMESIZE] = {};
    if (index < 0 || !if_indextoname(static_cast<unsigned>(index), name)) return {};
    return name;
}

const char* protocol_name(AvahiProtocol protocol) {
    return protocol == AVAHI_PROTO_INET6 ? "IPv6" : "IPv4";
}

} // namespace

struct Browser::Impl {
    Impl(AvahiSession& s, std::string own, ChangedHandler handler)
        : session(s)
        , own_ski(canonical_own_ski(own))
        , on_changed(std::move(handler)) {}

    // One instance as Avahi lists it: per interface and IP protocol.
    struct Key {
        AvahiIfIndex interface;
        AvahiProtocol protocol;
        std::string name, domain;
        auto operator<=>(const Key&) const = default;
    };
    struct Record {
        AvahiServiceResolver* resolver = nullptr; // kept open: it reports TXT and address changes
        std::optional<Sighting> sighting;
    };

    AvahiSession& session;
    std::optional<AvahiSession::Token> attached;
    const std::string own_ski;
    const ChangedHandler on_changed;

    AvahiServiceBrowser* browser = nullptr;
    std::map<Key, Record> records;
    std::uint64_t sequence = 0;
    std::vector<ServiceEntry> reported;

    void on_client(AvahiClient* c, AvahiClientState state);
    void report();
    void on_browse(AvahiServiceBrowser* b, const Key& key, AvahiBrowserEvent event);
    void on_resolve(AvahiServiceResolver* r, AvahiResolverEvent event, const char* host_name,
                    const AvahiAddress* address, std::uint16_t port, AvahiStringList* txt);

    static void browse_callback(AvahiServiceBrowser* b, AvahiIfIndex interface, AvahiProtocol protocol,
                                AvahiBrowserEvent event, const char* name, const char* type,
                                const char* domain, AvahiLookupResultFlags flags, void* self);
    static void resolve_callback(AvahiServiceResolver* r, AvahiIfIndex interface, AvahiProtocol protocol,
                                 AvahiResolverEvent event, const char* name, const char* type,
                                 const char* domain, const char* host_name, const AvahiAddress* address,
                                 std::uint16_t port, AvahiStringList* txt, AvahiLookupResultFlags flags,
                                 void* self);
};

void Browser::Impl::on_client(AvahiClient* c, AvahiClientState state) {
    switch (state) {
    case AVAHI_CLIENT_S_RUNNING:
    case AVAHI_CLIENT_S_REGISTERING:
    case AVAHI_CLIENT_S_COLLISION:
        if (browser) return;
        browser = avahi_service_browser_new(c, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, type_name.c_str(),
                                            nullptr, AvahiLookupFlags{}, &Impl::browse_callback, this);
        if (!browser)
            spdlog::error("mDNS: cannot browse for {}: {}", type_name, avahi_strerror(avahi_client_errno(c)));
        break;
    case AVAHI_CLIENT_CONNECTING:
    case AVAHI_CLIENT_FAILURE:
        browser = nullptr; // it and the resolvers are freed with the client
        records.clear();
        report();
        break;
    }
}

void Browser::Impl::report() {
    std::vector<Sighting> sightings;
    for (const auto& [key, record] : records)
        if (record.sighting) sightings.push_back(*record.sighting);
    auto peers = merge_sightings(sightings, own_ski);
    if (peers == reported) return;
    if (attached) { // not while stopping: the owner may be tearing down what it feeds
        for (const auto& peer : peers)
            if (std::none_of(reported.begin(), reported.end(),
                             [&](const ServiceEntry& old) { return old.ski == peer.ski; }))
                spdlog::info("mDNS: discovered SKI {} (SHIP ID '{}') at {} port {}", peer.ski, peer.ship_id,
                             peer.addresses.empty() ? std::string("?") : peer.addresses.front(), peer.port);
        for (const auto& old : reported)
            if (std::none_of(peers.begin(), peers.end(),
                             [&](const ServiceEntry& p) { return p.ski == old.ski; }))
                spdlog::info("mDNS: SKI {} (SHIP ID '{}') is gone", old.ski, old.ship_id);
        on_changed(peers);
    }
    reported = std::move(peers);
}

void Browser::Impl::on_browse(AvahiServiceBrowser* b, const Key& key, AvahiBrowserEvent event) {
    switch (event) {
    case AVAHI_BROWSER_NEW: {
        if (records.count(key)) return;
        auto* resolver =
            avahi_service_resolver_new(avahi_service_browser_get_client(b), key.interface, key.protocol,
                                       key.name.c_str(), type_name.c_str(), key.domain.c_str(), key.protocol,
                                       AvahiLookupFlags{}, &Impl::resolve_callback, this);
        if (!resolver) {
            spdlog::warn("mDNS: cannot resolve '{}': {}", key.name,
                         avahi_strerror(avahi_client_errno(avahi_service_browser_get_client(b))));
            return;
        }
        records[key].resolver = resolver;
        break;
    }
    case AVAHI_BROWSER_REMOVE: {
        const auto it = records.find(key);
        if (it == records.end()) return;
        if (it->second.resolver) avahi_service_resolver_free(it->second.resolver);
        records.erase(it);
        report();
        break;
    }
    case AVAHI_BROWSER_FAILURE:
        spdlog::error("mDNS: browsing for {} failed: {}", type_name,
                      avahi_strerror(avahi_client_errno(avahi_service_browser_get_client(b))));
        break;
    case AVAHI_BROWSER_ALL_FOR_NOW:
    case AVAHI_BROWSER_CACHE_EXHAUSTED:
        break;
    }
}

void Browser::Impl::on_resolve(AvahiServiceResolver* r, AvahiResolverEvent event, const char* host_name,
                               const AvahiAddress* address, std::uint16_t port, AvahiStringList* txt) {
    const auto it =
        std::find_if(records.begin(), records.end(), [r](const auto& kv) { return kv.second.resolver == r; });
    if (it == records.end()) return;
    const Key& key = it->first;
    auto& record = it->second;
    const std::string where = interface_name(key.interface) + "/" + protocol_name(key.protocol);
    if (event == AVAHI_RESOLVER_FAILURE) {
        spdlog::warn("mDNS: resolving '{}' on {} failed: {}", key.name, where,
                     avahi_strerror(avahi_client_errno(avahi_service_resolver_get_client(r))));
        avahi_service_resolver_free(r);
        record.resolver = nullptr;
        record.sighting.reset();
        report();
        return;
    }
    auto parsed = parse_txt(from_avahi_txt(txt));
    if (!parsed.entry) {
        spdlog::warn("mDNS: ignoring '{}' on {}: {}", key.name, where, parsed.error);
        record.sighting.reset();
        report();
        return;
    }
    auto& entry = *parsed.entry;
    entry.instance = key.name;
    entry.host_name = host_name ? host_name : "";
    entry.port = port;
    if (address) {
        char text[AVAHI_ADDRESS_STR_MAX] = {};
        avahi_address_snprint(text, sizeof text, address);
        entry.addresses.push_back(with_zone(text, interface_name(key.interface)));
    }
    record.sighting = Sighting{std::move(entry), ++sequence};
    report();
}

void Browser::Impl::browse_callback(AvahiServiceBrowser* b, AvahiIfIndex interface, AvahiProtocol protocol,
                                    AvahiBrowserEvent event, const char* name, const char* /*type*/,
                                    const char* domain, AvahiLookupResultFlags /*flags*/, void* self) {
    static_cast<Impl*>(self)->on_browse(b, Key{interface, protocol, name ? name : "", domain ? domain : ""},
                                        event);
}

void Browser::Impl::resolve_callback(AvahiServiceResolver* r, AvahiIfIndex /*interface*/,
                                     AvahiProtocol /*protocol*/, AvahiResolverEvent event,
                                     const char* /*name*/, const char* /*type*/, const char* /*domain*/,
                                     const char* host_name, const AvahiAddress* address, std::uint16_t port,
                                     AvahiStringList* txt, AvahiLookupResultFlags /*flags*/, void* self) {
    // Matched by resolver, not by name: the record's key is what the browser listed.
    static_cast<Impl*>(self)->on_resolve(r, event, host_name, address, port, txt);
}

Browser::Browser(AvahiSession& session, std::string own_ski, ChangedHandler on_changed)
    : impl_(std::make_unique<Impl>(session, std::move(own_ski), std::move(on_changed))) {}

Browser::~Browser() {
    stop();
}

void Browser::start() {
    if (impl_->attached) return;
    impl_->attached = impl_->session.attach(
        [impl = impl_.get()](AvahiClient* c, AvahiClientState state) { impl->on_client(c, state); });
}

void Browser::stop() {
    if (!impl_->attached) return;
    const auto token = *impl_->attached;
    impl_->attached.reset();                                        // nothing is reported from here on
    if (impl_->browser) avahi_service_browser_free(impl_->browser); // and its resolvers
    for (auto& [key, record] : impl_->records)
        if (record.resolver) avahi_service_resolver_free(record.resolver);
    impl_->browser = nullptr;
    impl_->records.clear();
    impl_->session.detach(token);
}

} // namespace ship::mdns
