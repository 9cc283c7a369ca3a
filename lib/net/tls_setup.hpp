// lib/net internals: the OpenSSL settings SHIP requires (versions, the two TLS 1.2 suites, groups, no
// tickets, no renegotiation, no resumption) and the per-handshake SHIP verdict on the peer certificate.
#pragma once

#include <cstdint>
#include <string>

#include <openssl/ssl.h>

#include "net/detail.hpp"

namespace ship::net::detail {

inline constexpr const char* tls12_cipher_list = "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256";
inline constexpr const char* tls_groups = "X25519:P-256:P-384:P-521";

// Throws std::runtime_error with OpenSSL's words if a setting is refused.
void apply_ship_tls_policy(SSL_CTX* ctx, bool tls12_only);

// A client SSL_CTX of our own (handed to lws as provided_client_ssl_ctx): policy, certificate and key from
// PEM (both empty = none), and no SNI for IP literals. Caller owns the result.
SSL_CTX* make_client_ssl_ctx(const std::string& certificate_pem, const std::string& private_key_pem,
                             bool tls12_only);

// Server side: reports failed handshakes (the alert we send) to the endpoint with this id.
void install_server_failure_reporting(SSL_CTX* ctx, StrandCore& core, std::uint64_t endpoint_id);

// The verdict stored on `ssl`, or null if no verify callback ran for it.
PeerVerdict* verdict_of(SSL* ssl);
// Runs check_peer_certificate on the handshake's leaf once and stores the verdict on the SSL.
PeerVerdict& judge_peer(SSL* ssl, X509_STORE_CTX* store);
// The server endpoint an SSL belongs to (by the id on its SSL_CTX), or null once it is gone.
Endpoint* endpoint_of(SSL* ssl);

} // namespace ship::net::detail
