#include "net/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <strings.h>

#include <stdexcept>

#include <spdlog/spdlog.h>

#include "net/detail.hpp"
#include "net/listen_address.hpp"
#include "net/tls_setup.hpp"

namespace ship::net {

namespace detail {

const lws_protocols ship_protocols[] = {
    {"ship", &lws_event, 0, 0, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

namespace {

// True if the comma-separated Sec-WebSocket-Protocol value offers `ship`.
bool offers_ship(std::string_view header) {
    while (!header.empty()) {
        const auto comma = header.find(',');
        auto token = header.substr(0, comma);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
            token.remove_prefix(1);
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
            token.remove_suffix(1);
        if (token == "ship") return true;
        if (comma == std::string_view::npos) break;
        header.remove_prefix(comma + 1);
    }
    return false;
}

std::string header(lws* wsi, lws_token_indexes token) {
    const int length = lws_hdr_total_length(wsi, token);
    if (length <= 0) return {};
    std::string value(static_cast<std::size_t>(length) + 1, '\0');
    const int copied = lws_hdr_copy(wsi, value.data(), length + 1, token);
    value.resize(copied > 0 ? static_cast<std::size_t>(copied) : 0);
    return value;
}

// Answers the upgrade request with an HTTP error; the client sees it instead of 101.
int refuse(lws* wsi, unsigned int status, const std::string& why) {
    if (lws_return_http_status(wsi, status, why.c_str())) return -1;
    return 1; // lws completes the transaction; the peer hangs up (or the keep-alive timeout reaps it)
}

} // namespace

} // namespace detail

class Server::Impl : public detail::Endpoint {
public:
    Impl(Strand& strand, ServerConfig server_config)
        : Endpoint(strand.core(), ship::Role::server, server_config.link)
        , config(std::move(server_config)) {
        if (!config.admit) throw std::invalid_argument("ServerConfig.admit is required");
        tls12_only = config.tls12_only;
        lws_context_creation_info info{};
        info.port = config.port;
        info.protocols = detail::ship_protocols;
        info.vhost_name =
            core.keep(std::make_shared<std::string>("ship-server-" + std::to_string(id)))->c_str();
        // Failing to bind is an error here, not a vhost that waits silently for the address to appear.
        info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
                       LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
                       LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS | LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
        if (!config.listen_address.empty()) {
            const std::string& spec = config.listen_address;
            const std::string bare = spec.substr(0, spec.find('%'));
            unsigned char raw[sizeof(in6_addr)];
            std::string iface = spec;
            if (inet_pton(AF_INET, spec.c_str(), raw) == 1) {
                // lws 4.1.6 binds an IPv6 socket unless told otherwise, and writes an IPv4 literal into the
                // wrong field of its sockaddr_in6 (sin6_flowinfo): the socket ended up on `*`. An IPv4
                // socket binds the literal.
                info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
            } else if (inet_pton(AF_INET6, bare.c_str(), raw) == 1) {
                // IPv6 only (also "::"), and without the zone: inet_pton refuses one; lws finds the scope of
                // a link-local address from the interface that has it.
                info.options |= LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY | LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE;
                iface = bare;
            }
            info.iface = core.keep(std::make_shared<std::string>(iface))->c_str();
        }
        // PEM in memory; deliberately no ssl_ca_filepath / server_ssl_ca_mem: a CA list would be sent to
        // clients as acceptable issuers, and Go clients then send no certificate at all.
        info.server_ssl_cert_mem = config.certificate_pem.data();
        info.server_ssl_cert_mem_len = static_cast<unsigned int>(config.certificate_pem.size());
        info.server_ssl_private_key_mem = config.private_key_pem.data();
        info.server_ssl_private_key_mem_len = static_cast<unsigned int>(config.private_key_pem.size());
        info.ssl_cipher_list = detail::tls12_cipher_list;
        info.alpn = "http/1.1"; // never h2: WebSocket over HTTP/1.1 only
        info.retry_and_idle_policy = retry;
        info.user = vhost_user();
        vhost = lws_create_vhost(core.context, &info);
        if (!vhost) {
            throw std::runtime_error(
                "cannot listen for SHIP on " + display_listen_address(config.listen_address, config.port) +
                (setup_error.empty()
                     ? std::string(" (address in use or not available, or a bad certificate or key)")
                     : ": " + setup_error));
        }
        port = static_cast<std::uint16_t>(lws_get_vhost_listen_port(vhost));
        spdlog::info("SHIP server listening on {}{}", display_listen_address(config.listen_address, port),
                     config.tls12_only ? " (TLS 1.2 only)" : "");
    }

    int confirm_upgrade(lws* wsi, const char* upgrade) override {
        const std::string remote = detail::peer_address_of_fd(lws_get_socket_fd(wsi));
        if (!upgrade || strcasecmp(upgrade, "websocket") != 0)
            return detail::refuse(wsi, HTTP_STATUS_BAD_REQUEST, "SHIP: WebSocket upgrade required");
        const auto* verdict = detail::verdict_of(lws_get_ssl(wsi));
        if (!verdict || !verdict->ok) {
            spdlog::warn("SHIP server: {} reached the upgrade without a checked certificate; refused",
                         remote);
            return detail::refuse(wsi, HTTP_STATUS_FORBIDDEN, "SHIP: client certificate required");
        }
        if (!detail::offers_ship(detail::header(wsi, WSI_TOKEN_PROTOCOL))) {
            spdlog::info("SHIP server: {} (SKI {}) asked for no subprotocol ship; refused", remote,
                         verdict->ski);
            return detail::refuse(wsi, HTTP_STATUS_BAD_REQUEST, "SHIP: subprotocol ship required");
        }
        if (core.stop.stop_requested())
            return detail::refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "SHIP: shutting down");

        auto link = detail::LinkOps::make(*this, nullptr);
        detail::LinkOps::set_remote(*link, remote);
        detail::LinkOps::set_peer_ski(*link, verdict->ski);
        detail::LinkOps::set_peer_fingerprint(*link, verdict->fingerprint);
        detail::LinkOps::set_path(*link, detail::header(wsi, WSI_TOKEN_GET_URI));
        const Admission admission = config.admit(link);
        if (!admission.handler) {
            spdlog::info("SHIP server: {} (SKI {}) refused: {}", remote, verdict->ski, admission.refusal);
            detail::LinkOps::forget(*link);
            detail::LinkOps::orphan(*link);
            return detail::refuse(wsi, admission.http_status ? admission.http_status : 503,
                                  admission.refusal);
        }
        link->set_handler(admission.handler);
        detail::LinkOps::attach(*link, wsi);
        return 0; // the owner holds `link`; if it did not keep it, ~Link has just cut the connection
    }

    void handshake_failed(const std::string& remote, const std::string& reason) override {
        spdlog::info("SHIP server: TLS handshake with {} failed: {}", remote.empty() ? "?" : remote, reason);
        if (config.on_handshake_failed) config.on_handshake_failed(HandshakeFailure{remote, reason});
    }

    std::optional<std::string> refuse_in_tls(const detail::PeerVerdict& verdict,
                                             const std::string& remote) override {
        if (!config.refuse_in_tls) return std::nullopt;
        return config.refuse_in_tls(verdict.ski, remote);
    }

    ServerConfig config;
    std::uint16_t port = 0;
};

Server::Server(Strand& strand, ServerConfig config) {
    SHIP_NET_ASSERT_ON_STRAND(strand.core());
    impl_ = std::make_unique<Impl>(strand, std::move(config));
}

Server::~Server() = default;

std::uint16_t Server::port() const {
    return impl_->port;
}

std::string Server::address() const {
    return display_listen_address(impl_->config.listen_address, impl_->port);
}

} // namespace ship::net
