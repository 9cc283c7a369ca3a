#include "net/client.hpp"

#include <stdexcept>

#include <spdlog/spdlog.h>

#include "net/detail.hpp"
#include "net/tls_setup.hpp"

namespace ship::net {

class Client::Impl : public detail::Endpoint {
public:
    Impl(Strand& strand, ClientConfig client_config)
        : Endpoint(strand.core(), ship::Role::client, client_config.link)
        , config(std::move(client_config)) {
        tls12_only = config.tls12_only;
        // Our own SSL_CTX: the certificate from memory, SHIP's TLS policy, no system CA bundle. The strand
        // keeps it until the lws context is gone (lws frees nothing it was handed).
        SSL_CTX* ctx =
            detail::make_client_ssl_ctx(config.certificate_pem, config.private_key_pem, config.tls12_only);
        core.keep(std::shared_ptr<SSL_CTX>(ctx, &SSL_CTX_free));
        lws_context_creation_info info{};
        info.port = CONTEXT_PORT_NO_LISTEN;
        info.protocols = detail::ship_protocols;
        info.vhost_name =
            core.keep(std::make_shared<std::string>("ship-client-" + std::to_string(id)))->c_str();
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
        info.provided_client_ssl_ctx = ctx;
        info.alpn = "http/1.1";
        info.retry_and_idle_policy = retry;
        info.user = vhost_user();
        vhost = lws_create_vhost(core.context, &info);
        if (!vhost) throw std::runtime_error("cannot create the SHIP client (libwebsockets vhost)");
    }

    ClientConfig config;
};

Client::Client(Strand& strand, ClientConfig config) {
    SHIP_NET_ASSERT_ON_STRAND(strand.core());
    impl_ = std::make_unique<Impl>(strand, std::move(config));
}

Client::~Client() = default;

std::shared_ptr<Link> Client::dial(const DialRequest& request, LinkHandler& handler) {
    SHIP_NET_ASSERT_ON_STRAND(impl_->core);
    if (impl_->core.stop.stop_requested()) return nullptr;
    auto link = detail::LinkOps::make(*impl_, &handler);
    spdlog::debug("SHIP client: dialling {} path {} (expecting SKI {})",
                  detail::display_address(request.host, request.port), request.path, request.expected_ski);
    detail::LinkOps::start_dial(*link, request, impl_->config.connect_timeout);
    return link;
}

} // namespace ship::net
