// Building SHIP-style self-signed certificates with OpenSSL 3's EVP and X509V3 APIs.
#include "tls/certificate_builder.hpp"

#include <ctime>
#include <stdexcept>

#include <openssl/rsa.h>

#include "tls/openssl_error.hpp"

namespace ship::tls {
namespace {

// RFC 5280 upper bound for CN (ub-common-name); OpenSSL would refuse longer ones with a less helpful message.
constexpr std::size_t max_common_name = 64;
constexpr int validity_years = 10;

void add_name_entry(X509_NAME* name, const char* field, const std::string& value) {
    if (value.empty()) return;
    if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1)
        throw OpenSslError(std::string("setting certificate subject ") + field + "='" + value + "'");
}

void validate(const Subject& subject) {
    if (subject.common_name.empty())
        throw std::invalid_argument("certificate subject needs a common name (the SHIP ID)");
    if (subject.common_name.size() > max_common_name)
        throw std::invalid_argument("certificate common name '" + subject.common_name +
                                    "' is longer than 64 bytes");
    if (!subject.country.empty() && subject.country.size() != 2)
        throw std::invalid_argument("certificate country '" + subject.country + "' must be two letters");
    for (const auto* v : {&subject.organization, &subject.organizational_unit})
        if (v->size() > max_common_name)
            throw std::invalid_argument("certificate subject field '" + *v + "' is longer than 64 bytes");
}

void add_conf_extension(X509* cert, int nid, const char* value) {
    X509V3_CTX ctx{};
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1)
        throw OpenSslError(std::string("adding certificate extension ") + OBJ_nid2sn(nid) + "=" + value);
}

void set_random_serial(X509* cert) {
    BignumPtr serial(BN_new());
    // Zero is not a valid serial; with 128 random bits a retry is practically never needed.
    do {
        if (!serial || BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1)
            throw OpenSslError("drawing a random certificate serial");
    } while (BN_is_zero(serial.get()));
    if (!BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert)))
        throw OpenSslError("setting the certificate serial");
}

void set_validity(X509* cert) {
    const std::time_t now = std::time(nullptr);
    std::tm end{};
    if (!gmtime_r(&now, &end)) throw std::runtime_error("cannot read the current time");
    end.tm_year += validity_years; // timegm normalises 29 February into 1 March
    const std::time_t not_after = timegm(&end);
    if (!ASN1_TIME_set(X509_getm_notBefore(cert), now) || !ASN1_TIME_set(X509_getm_notAfter(cert), not_after))
        throw OpenSslError("setting the certificate validity");
}

} // namespace

EvpPkeyPtr generate_ec_key(const char* group_name) {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* key = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 ||
        EVP_PKEY_CTX_set_group_name(ctx.get(), group_name) <= 0 || EVP_PKEY_generate(ctx.get(), &key) <= 0)
        throw OpenSslError(std::string("generating an EC key on ") + group_name);
    return EvpPkeyPtr(key);
}

EvpPkeyPtr generate_rsa_key(unsigned bits) {
    EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "RSA", nullptr));
    EVP_PKEY* key = nullptr;
    if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 ||
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx.get(), bits) <= 0 || EVP_PKEY_generate(ctx.get(), &key) <= 0)
        throw OpenSslError("generating an RSA key");
    return EvpPkeyPtr(key);
}

X509Ptr build_self_signed_certificate(EVP_PKEY* key, const Subject& subject, const SkiChoice& ski) {
    validate(subject);
    X509Ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1)
        throw OpenSslError("creating a certificate");
    set_random_serial(cert.get());
    set_validity(cert.get());

    X509_NAME* name = X509_get_subject_name(cert.get());
    add_name_entry(name, "C", subject.country);
    add_name_entry(name, "O", subject.organization);
    add_name_entry(name, "OU", subject.organizational_unit);
    add_name_entry(name, "CN", subject.common_name);
    if (X509_set_issuer_name(cert.get(), name) != 1 || X509_set_pubkey(cert.get(), key) != 1)
        throw OpenSslError("setting the certificate issuer and public key");

    add_conf_extension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_conf_extension(cert.get(), NID_key_usage, "critical,digitalSignature");
    switch (ski.kind) {
    case SkiChoice::Kind::method1_hash:
        // OpenSSL's "hash" is RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (04‖X‖Y).
        add_conf_extension(cert.get(), NID_subject_key_identifier, "hash");
        break;
    case SkiChoice::Kind::explicit_bytes: {
        Asn1OctetStringPtr value(ASN1_OCTET_STRING_new());
        if (!value ||
            ASN1_OCTET_STRING_set(value.get(), ski.bytes.data(), static_cast<int>(ski.bytes.size())) != 1 ||
            X509_add1_ext_i2d(cert.get(), NID_subject_key_identifier, value.get(), 0, X509V3_ADD_DEFAULT) !=
                1)
            throw OpenSslError("adding an explicit Subject Key Identifier");
        break;
    }
    case SkiChoice::Kind::omitted:
        break;
    }

    if (X509_sign(cert.get(), key, EVP_sha256()) <= 0) throw OpenSslError("self-signing the certificate");
    return cert;
}

std::string to_lower_hex(const unsigned char* data, std::size_t size) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (std::size_t i = 0; i < size; ++i) {
        out.push_back(digits[data[i] >> 4]);
        out.push_back(digits[data[i] & 0x0f]);
    }
    return out;
}

} // namespace ship::tls
