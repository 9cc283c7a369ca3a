// PEM text ⇄ OpenSSL objects through memory BIOs.
#include "tls/pem.hpp"

#include <climits>

#include <openssl/pem.h>

#include "tls/openssl_error.hpp"

namespace ship::tls {
namespace {

BioPtr read_bio(std::string_view pem) {
    if (pem.size() > static_cast<std::size_t>(INT_MAX)) return nullptr;
    return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

std::string drain(BIO* bio) {
    std::string out(BIO_ctrl_pending(bio), '\0');
    if (!out.empty() &&
        BIO_read(bio, out.data(), static_cast<int>(out.size())) != static_cast<int>(out.size()))
        throw OpenSslError("reading PEM from memory");
    return out;
}

} // namespace

X509Ptr parse_certificate_pem(std::string_view pem) {
    BioPtr bio = read_bio(pem);
    if (!bio) return nullptr;
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    take_openssl_errors(); // a parse failure is reported by the caller, with the file name
    return cert;
}

EvpPkeyPtr parse_private_key_pem(std::string_view pem) {
    BioPtr bio = read_bio(pem);
    if (!bio) return nullptr;
    // An empty passphrase callback result: an encrypted key fails instead of prompting on the terminal.
    EvpPkeyPtr key(PEM_read_bio_PrivateKey(
        bio.get(), nullptr, [](char*, int, int, void*) { return 0; }, nullptr));
    take_openssl_errors();
    return key;
}

std::string certificate_to_pem(const X509* cert) {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) throw OpenSslError("encoding a certificate as PEM");
    return drain(bio.get());
}

std::string private_key_to_pem(const EVP_PKEY* key) {
    // Secure-heap memory when the application set one up; plain memory otherwise.
    BioPtr bio(BIO_new(BIO_s_secmem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        throw OpenSslError("encoding a private key as PEM");
    return drain(bio.get());
}

} // namespace ship::tls
