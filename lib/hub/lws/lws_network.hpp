// The hub's network on libwebsockets: one net::Server per listen address (all on one port) and one
// net::Client, configured from the HubConfig's identity, TLS and link settings. Strand only.
#pragma once

#include <memory>
#include <vector>

#include "hub/hub.hpp"
#include "hub/ports.hpp"
#include "net/client.hpp"
#include "net/server.hpp"

namespace ship::net {
class Strand;
}

namespace ship::hub {

class LwsNetwork final : public Network {
public:
    // Throws std::runtime_error on a bad certificate or key.
    LwsNetwork(net::Strand& strand, const HubConfig& config);
    ~LwsNetwork() override;

    void listen(ListenHooks hooks) override;
    std::shared_ptr<net::Link> dial(const net::DialRequest& request, net::LinkHandler& handler) override;
    std::uint16_t port() const override;
    std::vector<std::string> addresses() const override;
    void release() override;

private:
    net::Strand& strand_;
    HubConfig config_;
    std::unique_ptr<net::Client> client_;
    std::vector<std::unique_ptr<net::Server>> servers_; // one per listen address, all on one port
};

} // namespace ship::hub
