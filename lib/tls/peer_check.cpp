// The SHIP peer-certificate rules. The SKI is recomputed from the key every time: a peer can write any bytes
// into its SKI extension, so only a match with the key makes the SKI an identity (TC_SHIP_SEC_002).
#include "tls/peer_check.hpp"

#include <array>
#include <cstring>

#include <openssl/core_names.h>
#include <openssl/obj_mac.h>

#include "tls/certificate_builder.hpp"
#include "tls/openssl_error.hpp"
#include "tls/openssl_handles.hpp"

namespace ship::tls {
namespace {

constexpr std::size_t sha1_length = 20;

PeerCheck fail(std::string reason) {
    return PeerCheck{false, {}, std::move(reason)};
}

// The curve's short name ("prime256v1", "secp384r1"), or "" for explicit parameters.
std::string group_name(const EVP_PKEY* key) {
    std::array<char, 80> name{};
    std::size_t len = 0;
    if (EVP_PKEY_get_group_name(key, name.data(), name.size(), &len) != 1) {
        take_openssl_errors();
        return {};
    }
    return std::string(name.data(), len);
}

bool is_p256(const std::string& group) {
    // OpenSSL reports the short name; accept the NIST alias too in case a provider reports that one.
    return group == SN_X9_62_prime256v1 || group == "P-256";
}

// SHA-1, fetched from the provider once: an implicit fetch (EVP_sha1() in EVP_Digest) is a lookup per call.
const EVP_MD* sha1() {
    static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    return md;
}

std::optional<std::string> sha1_hex(const unsigned char* data, std::size_t size) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int digest_len = 0;
    if (!sha1() || EVP_Digest(data, size, digest.data(), &digest_len, sha1(), nullptr) != 1 ||
        digest_len != sha1_length) {
        take_openssl_errors();
        return std::nullopt;
    }
    return to_lower_hex(digest.data(), digest_len);
}

} // namespace

std::optional<std::string> computed_ski(const X509* cert) {
    if (!cert) return std::nullopt;
    // The point as the certificate carries it: for the usual uncompressed P-256 key (04‖X‖Y, 65 bytes) that
    // is exactly what RFC 5280's method 1 hashes, with no decoding or re-encoding of the key.
    if (const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(cert)) {
        const unsigned char* data = ASN1_STRING_get0_data(bits);
        const auto size = static_cast<std::size_t>(ASN1_STRING_length(bits));
        if (size == 65 && data[0] == 0x04) return sha1_hex(data, size);
    }
    EVP_PKEY* key = X509_get0_pubkey(cert);
    if (!key || !EVP_PKEY_is_a(key, "EC")) {
        take_openssl_errors();
        return std::nullopt;
    }
    // A certificate may carry a compressed point; SHIP's SKI is over the uncompressed one, so ask for that
    // form explicitly on a copy (the certificate's key object is shared and must not change).
    EvpPkeyPtr copy(EVP_PKEY_dup(key));
    if (!copy || EVP_PKEY_set_utf8_string_param(copy.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) != 1) {
        take_openssl_errors();
        return std::nullopt;
    }
    unsigned char* point = nullptr;
    const std::size_t point_len = EVP_PKEY_get1_encoded_public_key(copy.get(), &point);
    if (point_len == 0 || !point) {
        take_openssl_errors();
        return std::nullopt;
    }
    auto ski = sha1_hex(point, point_len);
    OPENSSL_free(point);
    return ski;
}

PeerCheck check_peer_certificate(const X509* cert) {
    if (!cert) return fail("peer sent no certificate");

    const EVP_PKEY* key = X509_get0_pubkey(cert);
    if (!key) {
        take_openssl_errors();
        return fail("peer certificate has a public key OpenSSL cannot decode, SHIP requires ECDSA P-256");
    }
    if (!EVP_PKEY_is_a(key, "EC")) {
        const char* type = EVP_PKEY_get0_type_name(key);
        return fail(std::string("peer key is ") + (type ? type : "of an unknown type") +
                    ", SHIP requires ECDSA P-256");
    }
    const std::string group = group_name(key);
    if (group.empty()) return fail("peer key is EC with explicit curve parameters, SHIP requires P-256");
    if (!is_p256(group)) return fail("peer key is EC on " + group + ", SHIP requires P-256");

    int critical = 0;
    auto* raw = static_cast<ASN1_OCTET_STRING*>(
        X509_get_ext_d2i(cert, NID_subject_key_identifier, &critical, nullptr));
    Asn1OctetStringPtr ext(raw);
    if (!ext) {
        take_openssl_errors();
        if (critical == -1) return fail("peer certificate has no Subject Key Identifier");
        if (critical == -2) return fail("peer certificate has more than one Subject Key Identifier");
        return fail("peer certificate has a Subject Key Identifier extension that cannot be decoded");
    }
    const auto length = static_cast<std::size_t>(ASN1_STRING_length(ext.get()));
    if (length != sha1_length)
        return fail("SKI extension is " + std::to_string(length) + " bytes, SHIP requires 20");
    const std::string claimed = to_lower_hex(ASN1_STRING_get0_data(ext.get()), length);

    const auto expected = computed_ski(cert);
    if (!expected) return fail("cannot compute the SKI of the peer's public key");
    if (claimed != *expected)
        return fail("SKI extension " + claimed + " is not SHA-1 of the public key (" + *expected + ")");
    return PeerCheck{true, claimed, {}};
}

} // namespace ship::tls
