// PEM text ⇄ OpenSSL objects for certificates and private keys. Parsing returns null for text that holds no
// such object (the caller says which file was bad); encoding throws OpenSslError.
#pragma once

#include <string>
#include <string_view>

#include "tls/openssl_handles.hpp"

namespace ship::tls {

// The first certificate in `pem`, or null.
X509Ptr parse_certificate_pem(std::string_view pem);

// The first private key in `pem` (unencrypted PKCS#8 or traditional), or null.
EvpPkeyPtr parse_private_key_pem(std::string_view pem);

std::string certificate_to_pem(const X509* cert);

// Unencrypted PKCS#8 ("BEGIN PRIVATE KEY"): the file's 0600 mode is what protects it.
std::string private_key_to_pem(const EVP_PKEY* key);

} // namespace ship::tls
