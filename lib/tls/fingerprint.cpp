#include "tls/fingerprint.hpp"

#include <array>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls/openssl_error.hpp"
#include "tls/pem.hpp"

namespace ship::tls {

std::optional<std::string> certificate_fingerprint(const X509* cert) {
    if (!cert) return std::nullopt;
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (X509_digest(cert, EVP_sha256(), digest.data(), &length) != 1 || length != 32) {
        take_openssl_errors();
        return std::nullopt;
    }
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(2 * length);
    for (unsigned int i = 0; i < length; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 0x0f]);
    }
    return out;
}

std::optional<std::string> certificate_fingerprint_pem(std::string_view pem) {
    auto cert = parse_certificate_pem(std::string(pem));
    if (!cert) return std::nullopt;
    return certificate_fingerprint(cert.get());
}

} // namespace ship::tls
