// Self-signed certificates with the SHIP extension set, and the SKI bytes choice exposed so tests can build
// certificates that break the rules on purpose. Everything here throws OpenSslError or std::invalid_argument.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tls/identity.hpp"
#include "tls/openssl_handles.hpp"

namespace ship::tls {

// A fresh EC key on the named group ("P-256", "P-384", ...).
EvpPkeyPtr generate_ec_key(const char* group_name);

// A fresh RSA key of `bits` (only tests want one: SHIP forbids RSA).
EvpPkeyPtr generate_rsa_key(unsigned bits);

// How the SubjectKeyIdentifier extension is filled.
struct SkiChoice {
    enum class Kind { method1_hash, explicit_bytes, omitted };
    Kind kind = Kind::method1_hash;
    std::vector<unsigned char> bytes; // for explicit_bytes

    static SkiChoice hash() { return {}; }
    static SkiChoice none() { return {Kind::omitted, {}}; }
    static SkiChoice exactly(std::vector<unsigned char> b) { return {Kind::explicit_bytes, std::move(b)}; }
};

// Self-signed with SHA-256, random positive 128-bit serial, valid from now for 10 calendar years,
// KeyUsage digitalSignature (critical), BasicConstraints CA:TRUE (critical), the SKI as chosen.
// Rejects an empty or over-long CN and a country that is not two letters (std::invalid_argument).
X509Ptr build_self_signed_certificate(EVP_PKEY* key, const Subject& subject, const SkiChoice& ski);

// 40 lower-case hex for 20 bytes; any length works.
std::string to_lower_hex(const unsigned char* data, std::size_t size);

} // namespace ship::tls
