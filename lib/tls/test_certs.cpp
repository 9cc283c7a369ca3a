// Deliberately bad certificates, built with the same builder as real identities so that each differs from a
// good one in exactly the property under test.
#include "tls/test_certs.hpp"

#include <openssl/rand.h>
#include <stdexcept>
#include <vector>

#include "ship/ski.hpp"
#include "tls/certificate_builder.hpp"
#include "tls/openssl_error.hpp"
#include "tls/peer_check.hpp"
#include "tls/pem.hpp"

namespace ship::tls::testing {
namespace {

std::vector<unsigned char> random_bytes(std::size_t n) {
    std::vector<unsigned char> out(n);
    if (RAND_bytes(out.data(), static_cast<int>(n)) != 1) throw OpenSslError("drawing random SKI bytes");
    return out;
}

std::vector<unsigned char> from_hex(const std::string& hex) {
    const auto ski = ship::normalize_ski(hex);
    if (!ski) throw std::invalid_argument("victim SKI '" + hex + "' is not 40 hex characters");
    std::vector<unsigned char> out;
    for (std::size_t i = 0; i < ski->size(); i += 2)
        out.push_back(static_cast<unsigned char>(std::stoi(ski->substr(i, 2), nullptr, 16)));
    return out;
}

BadIdentity finish(EVP_PKEY* key, const X509* cert) {
    BadIdentity out;
    out.certificate_pem = certificate_to_pem(cert);
    out.private_key_pem = private_key_to_pem(key);
    const Asn1OctetStringPtr ext(static_cast<ASN1_OCTET_STRING*>(
        X509_get_ext_d2i(cert, NID_subject_key_identifier, nullptr, nullptr)));
    if (ext)
        out.ski_extension = to_lower_hex(ASN1_STRING_get0_data(ext.get()),
                                         static_cast<std::size_t>(ASN1_STRING_length(ext.get())));
    const PeerCheck check = check_peer_certificate(cert);
    if (check.ok) throw std::logic_error("a deliberately bad certificate passed the SHIP check");
    out.expected_reason = check.reason;
    return out;
}

} // namespace

BadIdentity make_bad_identity(BadCertificate kind, const Subject& subject, const std::string& victim_ski) {
    EvpPkeyPtr key;
    SkiChoice ski = SkiChoice::hash();
    switch (kind) {
    case BadCertificate::rsa_key:
        key = generate_rsa_key(2048);
        break;
    case BadCertificate::ec_p384_key:
        key = generate_ec_key("P-384");
        break;
    case BadCertificate::missing_ski:
        key = generate_ec_key("P-256");
        ski = SkiChoice::none();
        break;
    case BadCertificate::short_ski:
        key = generate_ec_key("P-256");
        ski = SkiChoice::exactly(random_bytes(8));
        break;
    case BadCertificate::ski_not_matching_key:
        key = generate_ec_key("P-256");
        ski = SkiChoice::exactly(random_bytes(20));
        break;
    case BadCertificate::ski_of_other_certificate:
        key = generate_ec_key("P-256");
        ski = SkiChoice::exactly(from_hex(victim_ski.empty() ? generate_identity(subject).ski : victim_ski));
        break;
    }
    const auto cert = build_self_signed_certificate(key.get(), subject, ski);
    return finish(key.get(), cert.get());
}

const char* to_string(BadCertificate kind) {
    switch (kind) {
    case BadCertificate::rsa_key:
        return "rsa_key";
    case BadCertificate::ec_p384_key:
        return "ec_p384_key";
    case BadCertificate::missing_ski:
        return "missing_ski";
    case BadCertificate::short_ski:
        return "short_ski";
    case BadCertificate::ski_not_matching_key:
        return "ski_not_matching_key";
    case BadCertificate::ski_of_other_certificate:
        return "ski_of_other_certificate";
    }
    return "unknown";
}

} // namespace ship::tls::testing
