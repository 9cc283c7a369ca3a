// Endpoint: what a Server's vhost and a Client share — its Links, settings and keep-alive policy.
#include <algorithm>

#include <libwebsockets.h>
#include <spdlog/spdlog.h>

#include "net/detail.hpp"

namespace ship::net::detail {

Endpoint::Endpoint(StrandCore& strand_core, ship::Role endpoint_role, LinkSettings link_settings)
    : core(strand_core)
    , id(strand_core.new_id())
    , role(endpoint_role)
    , settings(link_settings) {
    SHIP_NET_ASSERT_ON_STRAND(core);
    core.endpoints.emplace(id, this);
    make_retry_policy();
}

Endpoint::~Endpoint() {
    core.endpoints.erase(id);
    // Links that outlive their endpoint are cut without callbacks (server.hpp / client.hpp say so).
    const auto orphans = links;
    for (LwsLink* link : orphans) {
        LinkOps::forget(*link);
        LinkOps::orphan(*link);
    }
    if (vhost && core.context) lws_vhost_destroy(vhost);
}

int Endpoint::confirm_upgrade(lws*, const char*) {
    return -1;
}

void Endpoint::handshake_failed(const std::string&, const std::string&) {}

std::optional<std::string> Endpoint::refuse_in_tls(const PeerVerdict&, const std::string&) {
    return std::nullopt;
}

void Endpoint::make_retry_policy() {
    // Every field zero: lws keeps no validity timer per connection (one sorted-list insert per pong, O(n)
    // each); our keep-alive sweep pings instead (net/keep_alive.hpp).
    auto policy = std::make_shared<lws_retry_bo_t>();
    *policy = lws_retry_bo_t{};
    retry = core.keep(std::move(policy));
    const auto ping = std::clamp<long long>(settings.ping.ping_after.count(), 1, 65534);
    const auto hang_up = std::clamp<long long>(settings.ping.hang_up_after.count(), ping + 1, 65535);
    settings.ping.ping_after = std::chrono::seconds(ping);
    settings.ping.hang_up_after = std::chrono::seconds(hang_up);
}

} // namespace ship::net::detail
