// A certificate's SHA-256 fingerprint as the SHIP Pairing Service and the installation QR text (FPH256) write
// it: SHA-256 over the complete DER encoding of the certificate, 64 upper-case hex digits.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <openssl/types.h>

namespace ship::tls {

// nullopt for a null certificate or one that cannot be encoded.
std::optional<std::string> certificate_fingerprint(const X509* cert);
// The same for the first certificate in PEM text; nullopt if there is none.
std::optional<std::string> certificate_fingerprint_pem(std::string_view pem);

} // namespace ship::tls
