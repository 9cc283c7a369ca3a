// Deliberately bad certificates, built with the same builder as real identities so that each differs from a
// good one in exactly the property under test.
#include "tls/test_certs.hpp"

#include <algorithm>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
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

namespace {

using Der = std::vector<unsigned char>;

// The length of a DER TLV starting at `at`, and where its value starts (definite lengths only).
std::pair<std::size_t, std::size_t> tlv(const Der& der, std::size_t at) {
    if (at + 2 > der.size()) throw std::runtime_error("DER: truncated");
    std::size_t length = der[at + 1];
    std::size_t header = 2;
    if (length & 0x80) {
        const std::size_t bytes = length & 0x7f;
        length = 0;
        for (std::size_t i = 0; i < bytes; ++i)
            length = (length << 8) | der[at + 2 + i];
        header += bytes;
    }
    return {header, length};
}

Der with_header(unsigned char tag, const Der& value) {
    Der out{tag};
    const std::size_t n = value.size();
    if (n < 0x80) {
        out.push_back(static_cast<unsigned char>(n));
    } else if (n < 0x100) {
        out.insert(out.end(), {0x81, static_cast<unsigned char>(n)});
    } else {
        out.insert(out.end(),
                   {0x82, static_cast<unsigned char>(n >> 8), static_cast<unsigned char>(n & 0xff)});
    }
    out.insert(out.end(), value.begin(), value.end());
    return out;
}

// Replaces `pattern` (which must be there) by `replacement` of the same length.
void patch(Der& der, const Der& pattern, const Der& replacement) {
    auto it = std::search(der.begin(), der.end(), pattern.begin(), pattern.end());
    if (it == der.end()) throw std::logic_error("certificate builder changed: BOOLEAN pattern not found");
    std::copy(replacement.begin(), replacement.end(), it);
}

} // namespace

std::vector<unsigned char> certificate_der(const std::string& certificate_pem) {
    const auto cert = parse_certificate_pem(certificate_pem);
    if (!cert) throw std::invalid_argument("no certificate in the PEM text");
    unsigned char* out = nullptr;
    const int n = i2d_X509(cert.get(), &out);
    if (n <= 0) throw OpenSslError("encoding a certificate");
    std::vector<unsigned char> der(out, out + n);
    OPENSSL_free(out);
    return der;
}

Identity make_identity_with_boolean_true_as_01(const Subject& subject) {
    EvpPkeyPtr key = generate_ec_key("P-256");
    const auto cert = build_self_signed_certificate(key.get(), subject, SkiChoice::hash());
    unsigned char* raw = nullptr;
    const int n = i2d_X509(cert.get(), &raw);
    if (n <= 0) throw OpenSslError("encoding a certificate");
    Der der(raw, raw + n);
    OPENSSL_free(raw);

    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    const auto [outer_header, outer_length] = tlv(der, 0);
    const std::size_t tbs_at = outer_header;
    const auto [tbs_header, tbs_length] = tlv(der, tbs_at);
    Der tbs(der.begin() + static_cast<long>(tbs_at),
            der.begin() + static_cast<long>(tbs_at + tbs_header + tbs_length));
    const std::size_t algorithm_at = tbs_at + tbs_header + tbs_length;
    const auto [algorithm_header, algorithm_length] = tlv(der, algorithm_at);
    const Der algorithm(der.begin() + static_cast<long>(algorithm_at),
                        der.begin() + static_cast<long>(algorithm_at + algorithm_header + algorithm_length));
    (void)outer_length;

    // basicConstraints (2.5.29.19): critical TRUE, then OCTET STRING { SEQUENCE { cA TRUE } }; keyUsage
    // (2.5.29.15): critical TRUE. Same length, so no length in the TBS changes.
    patch(tbs, {0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff, 0x04, 0x05, 0x30, 0x03, 0x01, 0x01, 0xff},
          {0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0x01, 0x04, 0x05, 0x30, 0x03, 0x01, 0x01, 0x01});
    patch(tbs, {0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff},
          {0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0x01});

    // ECDSA-SHA256 over the patched TBS, as the wallbox's own signature covers its own bytes.
    EVP_MD_CTX* md = EVP_MD_CTX_new();
    std::size_t signature_length = 0;
    Der signature;
    const bool signed_ok =
        md && EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key.get()) == 1 &&
        EVP_DigestSign(md, nullptr, &signature_length, tbs.data(), tbs.size()) == 1 &&
        (signature.resize(signature_length), true) &&
        EVP_DigestSign(md, signature.data(), &signature_length, tbs.data(), tbs.size()) == 1;
    EVP_MD_CTX_free(md);
    if (!signed_ok) throw OpenSslError("signing the patched certificate");
    signature.resize(signature_length);
    Der bits{0x00}; // no unused bits
    bits.insert(bits.end(), signature.begin(), signature.end());

    Der body = tbs;
    body.insert(body.end(), algorithm.begin(), algorithm.end());
    const Der bit_string = with_header(0x03, bits);
    body.insert(body.end(), bit_string.begin(), bit_string.end());
    const Der patched = with_header(0x30, body);

    const unsigned char* p = patched.data();
    X509Ptr parsed(d2i_X509(nullptr, &p, static_cast<long>(patched.size())));
    if (!parsed) throw OpenSslError("OpenSSL refused the certificate with 0x01 booleans");
    Identity identity;
    identity.certificate_pem = certificate_to_pem(parsed.get());
    identity.private_key_pem = private_key_to_pem(key.get());
    const PeerCheck check = check_peer_certificate(parsed.get());
    if (!check.ok)
        throw std::logic_error("the 0x01-boolean certificate fails the SHIP check: " + check.reason);
    identity.ski = check.ski;
    return identity;
}

} // namespace ship::tls::testing
