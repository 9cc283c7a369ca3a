// Certificates that break the SHIP rules on purpose, for rejection tests (TC_SHIP_SEC_001/002). Each comes
// with its matching private key, so a TLS peer can really present it; only tests link this (tls_testing_dep).
#pragma once

#include <string>

#include "tls/identity.hpp"

namespace ship::tls::testing {

enum class BadCertificate {
    rsa_key,     // RSA 2048 key, SKI method 1 over it          → "peer key is RSA, ..."
    ec_p384_key, // EC key on secp384r1, SKI method 1 over it    → "peer key is EC on secp384r1, ..."
    missing_ski, // P-256, no SKI extension                      → "... has no Subject Key Identifier"
    short_ski,   // P-256, 8-byte SKI                            → "SKI extension is 8 bytes, ..."
    ski_not_matching_key, // P-256, 20 random bytes as SKI                → "SKI extension ... is not SHA-1
                          // ..."
    ski_of_other_certificate, // P-256, SKI copied from another identity (forged, TC_SHIP_SEC_002)
};

struct BadIdentity {
    std::string certificate_pem;
    std::string private_key_pem; // matches the certificate
    std::string ski_extension;   // hex of the SKI extension as written, "" if none
    std::string expected_reason; // what check_peer_certificate says about it (exact text)
};

// `victim_ski` (40 hex) is the SKI to forge for ski_of_other_certificate; empty = a freshly generated one.
BadIdentity make_bad_identity(BadCertificate kind, const Subject& subject = {"bad-peer", {}, {}, {}},
                              const std::string& victim_ski = {});

// For test names and logs: "rsa_key", "ec_p384_key", ...
const char* to_string(BadCertificate kind);

} // namespace ship::tls::testing
