#include "hub/lws/lws_network.hpp"

namespace ship::hub {

LwsNetwork::LwsNetwork(net::Strand& strand, const HubConfig& config)
    : strand_(strand)
    , config_(config) {
    net::ClientConfig client;
    client.certificate_pem = config_.certificate_pem;
    client.private_key_pem = config_.private_key_pem;
    client.tls12_only = config_.tls12_only;
    client.link = config_.link;
    client.connect_timeout = config_.connect_timeout;
    client_ = std::make_unique<net::Client>(strand_, std::move(client));
}

LwsNetwork::~LwsNetwork() {
    release();
}

void LwsNetwork::listen(ListenHooks hooks) {
    std::vector<std::string> addresses = config_.listen_addresses;
    if (addresses.empty()) addresses.push_back(config_.listen_address);
    net::ServerConfig server;
    server.certificate_pem = config_.certificate_pem;
    server.private_key_pem = config_.private_key_pem;
    server.port = config_.port;
    server.tls12_only = config_.tls12_only;
    server.link = config_.link;
    server.admit = std::move(hooks.admit);
    server.refuse_in_tls = std::move(hooks.refuse_in_tls);
    server.on_handshake_failed = std::move(hooks.on_handshake_failed);
    for (const auto& address : addresses) {
        server.listen_address = address;
        // Port 0 picks one for the first address; the others share it, so the Port property is the port.
        if (!servers_.empty()) server.port = servers_.front()->port();
        servers_.push_back(std::make_unique<net::Server>(strand_, server));
    }
}

std::shared_ptr<net::Link> LwsNetwork::dial(const net::DialRequest& request, net::LinkHandler& handler) {
    return client_ ? client_->dial(request, handler) : nullptr;
}

std::uint16_t LwsNetwork::port() const {
    return servers_.empty() ? config_.port : servers_.front()->port();
}

std::vector<std::string> LwsNetwork::addresses() const {
    std::vector<std::string> out;
    for (const auto& server : servers_)
        out.push_back(server->address());
    return out;
}

void LwsNetwork::release() {
    servers_.clear();
    client_.reset();
}

} // namespace ship::hub
