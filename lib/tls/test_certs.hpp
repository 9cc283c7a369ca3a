// Certificates that break the SHIP rules on purpose (SHIP 12.2, TC_SHIP_SEC_001/002), each with its matching
// private key so a TLS peer can really present it. Only tests link this library (tls_testing_dep).
#pragma once

#include <string>
#include <vector>

#include "tls/identity.hpp"

namespace ship::tls::testing {

// Each kind differs from a good identity in exactly one property; the reason check_peer_certificate gives:
enum class BadCertificate {
    rsa_key,                  // RSA 2048 key: "peer key is RSA, SHIP requires ECDSA P-256"
    ec_p384_key,              // EC on secp384r1: "peer key is EC on secp384r1, SHIP requires P-256"
    missing_ski,              // no SKI extension: "peer certificate has no Subject Key Identifier"
    short_ski,                // 8-byte SKI: "SKI extension is 8 bytes, SHIP requires 20"
    ski_not_matching_key,     // 20 random bytes (TC_SHIP_SEC_001): "SKI extension <hex> is not SHA-1 of ..."
    ski_of_other_certificate, // another node's SKI, forged (TC_SHIP_SEC_002): as ski_not_matching_key
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

// A good SHIP identity whose certificate encodes every ASN.1 BOOLEAN TRUE (basicConstraints cA and the
// critical flags of basicConstraints and keyUsage) as 0x01 instead of DER's 0xFF, re-signed over those bytes:
// the certificates Elli / VW wallboxes send. Go's X.509 parser refuses them; OpenSSL takes them.
Identity make_identity_with_boolean_true_as_01(const Subject& subject = {"wallbox-0x01", {}, {}, {}});
// The DER bytes of a PEM certificate, exactly as they travel.
std::vector<unsigned char> certificate_der(const std::string& certificate_pem);

} // namespace ship::tls::testing
