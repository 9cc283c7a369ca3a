// The single lws protocol callback: routes every lws event to the strand, an endpoint or a Link, by id.
#include <cstring>
#include <exception>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>

#include "net/detail.hpp"
#include "net/tls_setup.hpp"

namespace ship::net::detail {

namespace {

StrandCore* core_of(lws* wsi) {
    if (!wsi) return nullptr;
    lws_context* context = lws_get_context(wsi);
    return context ? static_cast<StrandCore*>(lws_context_user(context)) : nullptr;
}

int on_link_event(StrandCore& core, lws* wsi, lws_callback_reasons reason, void* in, std::size_t len) {
    LwsLink* link = LinkOps::from_wsi(core, wsi);
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        return link ? LinkOps::established(*link, wsi) : -1;

    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        return link ? LinkOps::before_request(*link, wsi) : -1;

    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return link ? LinkOps::receive(*link, wsi, in, len) : -1;

    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return link ? LinkOps::writeable(*link, wsi) : -1;

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (link) LinkOps::peer_close(*link, in, len);
        return 0;

    case LWS_CALLBACK_RECEIVE_PONG:
    case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
        if (link) LinkOps::pong(*link);
        return 0;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (link) {
            std::string error;
            if (in)
                error.assign(static_cast<const char*>(in),
                             len ? len : std::strlen(static_cast<const char*>(in)));
            if (const auto* verdict = verdict_of(lws_get_ssl(wsi)); verdict && !verdict->peer_alert.empty())
                error = "TLS alert from the server: " + verdict->peer_alert;
            LinkOps::wsi_gone(*link, wsi, true, error, lws_http_client_http_response(wsi));
        }
        return 0;

    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_WSI_DESTROY:
        if (link) LinkOps::wsi_gone(*link, wsi, false, {}, 0);
        return 0;

    default:
        return 0;
    }
}

int dispatch(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION: {
        // We are the server judging the client's certificate. lws gives no usable wsi here (notes): the
        // verdict is stored on the SSL and read again with lws_get_ssl(wsi) before the upgrade.
        auto* ssl = static_cast<SSL*>(in);
        auto* store = static_cast<X509_STORE_CTX*>(user);
        auto& verdict = judge_peer(ssl, store);
        // The owner may refuse a proven SKI here (a blocked peer): it then never sees an HTTP byte of ours.
        if (verdict.ok && !verdict.quiet) {
            if (Endpoint* endpoint = endpoint_of(ssl)) {
                if (auto refusal = endpoint->refuse_in_tls(verdict, peer_address_of_fd(SSL_get_fd(ssl)))) {
                    verdict.ok = false;
                    verdict.quiet = true;
                    verdict.reason = *refusal;
                }
            }
        }
        // Self-signed leaves arrive with preverify_ok = 0; the SHIP rule replaces chain validation.
        X509_STORE_CTX_set_error(store, verdict.ok ? X509_V_OK : X509_V_ERR_APPLICATION_VERIFICATION);
        return verdict.ok ? 0 : 1;
    }
    case LWS_CALLBACK_OPENSSL_PERFORM_SERVER_CERT_VERIFICATION: {
        auto* ssl = static_cast<SSL*>(in);
        auto* store = static_cast<X509_STORE_CTX*>(user);
        const auto& verdict = judge_peer(ssl, store);
        StrandCore* core = core_of(wsi);
        LwsLink* link = core ? LinkOps::from_wsi(*core, wsi) : nullptr;
        const int refuse = link ? LinkOps::server_certificate(*link, verdict) : 1;
        X509_STORE_CTX_set_error(store, refuse ? X509_V_ERR_APPLICATION_VERIFICATION : X509_V_OK);
        return refuse;
    }
    default:
        break;
    }

    StrandCore* core = core_of(wsi);
    if (!core || core->silenced) return 0;

    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS: {
        Endpoint* endpoint = core->find_endpoint(lws_get_vhost(wsi));
        if (!endpoint) return 1;
        auto* ctx = static_cast<SSL_CTX*>(user);
        try {
            apply_ship_tls_policy(ctx, endpoint->tls12_only);
        } catch (const std::exception& e) {
            endpoint->setup_error = e.what();
            return 1;
        }
        install_server_failure_reporting(ctx, *core, endpoint->id);
        return 0;
    }

    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: {
        Endpoint* endpoint = core->find_endpoint(lws_get_vhost(wsi));
        return endpoint ? endpoint->confirm_upgrade(wsi, static_cast<const char*>(in)) : -1;
    }

    case LWS_CALLBACK_HTTP:
        // Plain HTTP on the SHIP port: nothing to serve.
        if (lws_return_http_status(wsi, HTTP_STATUS_BAD_REQUEST,
                                   "SHIP: WebSocket upgrade with subprotocol ship required"))
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;

    default:
        return on_link_event(*core, wsi, reason, in, len);
    }
}

} // namespace

int lws_event(lws* wsi, lws_callback_reasons reason, void* user, void* in, std::size_t len) {
    StrandCore* core = core_of(wsi);
    if (core) core->in_service.push_back(wsi);
    struct Pop {
        StrandCore* core;
        ~Pop() {
            if (core) core->in_service.pop_back();
        }
    } pop{core};
    try {
        return dispatch(wsi, reason, user, in, len);
    } catch (const std::exception& e) {
        // An owner handler threw: that is a bug above us, but it must not unwind through C.
        spdlog::error("net: exception in a connection callback ({}): {}", static_cast<int>(reason), e.what());
    } catch (...) {
        spdlog::error("net: unknown exception in a connection callback ({})", static_cast<int>(reason));
    }
    return -1;
}

} // namespace ship::net::detail
