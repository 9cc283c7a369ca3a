#include "net/tls_setup.hpp"

#include <cctype>
#include <mutex>
#include <stdexcept>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <spdlog/spdlog.h>

#include "tls/fingerprint.hpp"
#include "tls/openssl_error.hpp"
#include "tls/peer_check.hpp"
#include "tls/pem.hpp"

namespace ship::net::detail {

namespace {

void free_verdict(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<PeerVerdict*>(ptr);
}

// OpenSSL ex_data indices are process-wide and allocated once.
int verdict_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_verdict);
    return index;
}

int endpoint_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

// Where an SSL_CTX reports to: the endpoint is looked up by id, so a destroyed one is simply not found.
struct EndpointRef {
    StrandCore* core;
    std::uint64_t id;
};

void require(int ok, const char* what) {
    if (ok != 1) throw std::runtime_error(std::string(what) + ": " + ship::tls::take_openssl_errors());
}

// RFC 6066 forbids IP literals in SNI; lws would send the address (or "[" for a bracketed IPv6 host).
bool is_dns_name(const char* name) {
    if (!name || !*name) return false;
    in_addr v4{};
    if (inet_pton(AF_INET, name, &v4) == 1) return false;
    bool letter = false;
    for (const char* p = name; *p; ++p) {
        const auto c = static_cast<unsigned char>(*p);
        if (std::isalpha(c))
            letter = true;
        else if (!std::isdigit(c) && c != '-' && c != '.')
            return false;
    }
    return letter;
}

// OpenSSL 3.0 has no text for TLS 1.3's certificate_required (116).
std::string alert_text(int ret) {
    if ((ret & 0xff) == 116) return "certificate required";
    return SSL_alert_desc_string_long(ret);
}

void client_info_callback(const SSL* ssl, int where, int ret) {
    auto* s = const_cast<SSL*>(ssl);
    if ((where & SSL_CB_ALERT) && (where & SSL_CB_READ) && (ret >> 8) == SSL3_AL_FATAL) {
        // With TLS 1.3 the server judges our certificate after our side finished: its alert is the only
        // account of why the connection then ends.
        auto* verdict = verdict_of(s);
        if (!verdict) {
            verdict = new PeerVerdict{};
            SSL_set_ex_data(s, verdict_index(), verdict);
        }
        verdict->peer_alert = alert_text(ret);
        return;
    }
    if (!(where & SSL_CB_HANDSHAKE_START)) return;
    if (!is_dns_name(SSL_get_servername(s, TLSEXT_NAMETYPE_host_name)))
        SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, nullptr);
}

void server_info_callback(const SSL* ssl, int where, int ret) {
    auto* s = const_cast<SSL*>(ssl);
    if (where & SSL_CB_HANDSHAKE_DONE) {
        auto* done = verdict_of(s);
        if (!done) {
            done = new PeerVerdict{};
            SSL_set_ex_data(s, verdict_index(), done);
        }
        done->handshake_done = true;
        return;
    }
    // A fatal alert we write while the handshake is still running is the server refusing the peer. Not
    // SSL_in_init alone: OpenSSL 3 sets it again for any fatal error, also on a link long established.
    if (!(where & SSL_CB_ALERT) || !(where & SSL_CB_WRITE) || !SSL_in_init(ssl)) return;
    if ((ret >> 8) != SSL3_AL_FATAL) return;
    auto* verdict = verdict_of(s);
    if (!verdict) {
        verdict = new PeerVerdict{};
        SSL_set_ex_data(s, verdict_index(), verdict);
    }
    if (verdict->reported || verdict->handshake_done) return;
    // The peer went away (a bare TCP FIN) during the handshake: OpenSSL 3 raises "decode error" for the
    // unexpected EOF. A lost connection (a dial the peer gave up, say), not a refusal.
    if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING) return;
    verdict->reported = true;
    if (verdict->quiet) return; // the owner refused it and keeps its own account (one line per burst)
    std::string reason = verdict->reason;
    if (reason.empty()) {
        reason = "TLS handshake failed, alert sent: " + alert_text(ret);
        if (!SSL_get0_peer_certificate(s) && (ret & 0xff) == 116 /* certificate_required */)
            reason = "peer sent no certificate (TLS alert certificate required)";
    }
    const auto* where_to =
        static_cast<const EndpointRef*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), endpoint_index()));
    if (!where_to || !where_to->core->owner_calls_allowed()) return;
    auto it = where_to->core->endpoints.find(where_to->id);
    if (it == where_to->core->endpoints.end()) return;
    it->second->handshake_failed(peer_address_of_fd(SSL_get_fd(s)), reason);
}

} // namespace

void apply_ship_tls_policy(SSL_CTX* ctx, bool tls12_only) {
    require(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION), "TLS minimum version 1.2");
    require(SSL_CTX_set_max_proto_version(ctx, tls12_only ? TLS1_2_VERSION : 0), "TLS maximum version");
    require(SSL_CTX_set_cipher_list(ctx, tls12_cipher_list), "TLS 1.2 cipher list");
    // lws pins the server to P-256 alone (SSL_CTX_set_tmp_ecdh); SHIP peers also need X25519.
    require(SSL_CTX_set1_groups_list(ctx, tls_groups), "TLS groups");
    // No resumption: a resumed session would skip the peer-certificate check.
    // A peer's bare TCP FIN stays an error to OpenSSL 3 (a fatal "decode error", unexpected EOF), not a clean
    // close (SSL_OP_IGNORE_UNEXPECTED_EOF): libwebsockets 4.1.6 then kills the socket at once, where after a
    // clean close it would first wait up to 5 s to flush anything still queued to a peer that is gone. The
    // server's info callback below tells that alert from a refusal.
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    require(SSL_CTX_set_num_tickets(ctx, 0), "TLS 1.3 tickets off");
    // An idle link holds no 16 KiB read and write buffers: OpenSSL frees them when they are empty and takes
    // them again for the next record (SHIP links idle between a few small messages).
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
}

SSL_CTX* make_client_ssl_ctx(const std::string& certificate_pem, const std::string& private_key_pem,
                             bool tls12_only) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) throw std::runtime_error("TLS client context: " + ship::tls::take_openssl_errors());
    try {
        apply_ship_tls_policy(ctx, tls12_only);
        if (!certificate_pem.empty() || !private_key_pem.empty()) {
            auto cert = ship::tls::parse_certificate_pem(certificate_pem);
            auto key = ship::tls::parse_private_key_pem(private_key_pem);
            if (!cert) throw std::runtime_error("client certificate: no certificate in the PEM text");
            if (!key) throw std::runtime_error("client certificate: no private key in the PEM text");
            require(SSL_CTX_use_certificate(ctx, cert.get()), "client certificate");
            require(SSL_CTX_use_PrivateKey(ctx, key.get()), "client private key");
            require(SSL_CTX_check_private_key(ctx), "client certificate and key do not match");
        }
        SSL_CTX_set_info_callback(ctx, &client_info_callback);
    } catch (...) {
        SSL_CTX_free(ctx);
        throw;
    }
    return ctx;
}

void install_server_failure_reporting(SSL_CTX* ctx, StrandCore& core, std::uint64_t endpoint_id) {
    // Kept by the strand: the SSL_CTX (and lws's deferred vhost teardown) may outlive the Server.
    auto* ref = core.keep(std::make_shared<EndpointRef>(EndpointRef{&core, endpoint_id}));
    SSL_CTX_set_ex_data(ctx, endpoint_index(), ref);
    SSL_CTX_set_info_callback(ctx, &server_info_callback);
}

PeerVerdict* verdict_of(SSL* ssl) {
    return ssl ? static_cast<PeerVerdict*>(SSL_get_ex_data(ssl, verdict_index())) : nullptr;
}

PeerVerdict& judge_peer(SSL* ssl, X509_STORE_CTX* store) {
    if (auto* existing = verdict_of(ssl); existing && (existing->ok || !existing->reason.empty()))
        return *existing;
    auto* verdict = verdict_of(ssl);
    if (!verdict) {
        verdict = new PeerVerdict{};
        SSL_set_ex_data(ssl, verdict_index(), verdict);
    }
    // The leaf the peer sent, whatever chain it came with: SHIP identity is the leaf's SKI.
    const auto check = ship::tls::check_peer_certificate(X509_STORE_CTX_get0_cert(store));
    verdict->ok = check.ok;
    verdict->ski = check.ski;
    verdict->reason = check.ok ? std::string{} : check.reason;
    if (check.ok)
        verdict->fingerprint =
            ship::tls::certificate_fingerprint(X509_STORE_CTX_get0_cert(store)).value_or("");
    return *verdict;
}

Endpoint* endpoint_of(SSL* ssl) {
    if (!ssl) return nullptr;
    const auto* ref =
        static_cast<const EndpointRef*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), endpoint_index()));
    if (!ref || !ref->core->owner_calls_allowed()) return nullptr;
    auto it = ref->core->endpoints.find(ref->id);
    return it == ref->core->endpoints.end() ? nullptr : it->second;
}

} // namespace ship::net::detail
