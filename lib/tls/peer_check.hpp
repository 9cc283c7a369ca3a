// The SHIP identity rules for a peer's leaf certificate (SHIP §12.2, TC_SHIP_SEC_001/002): the key is
// ECDSA P-256 and the SKI extension is 20 bytes equal to SHA-1 of the public point. Computed, never trusted.
#pragma once

#include <optional>
#include <string>

#include <openssl/types.h>

namespace ship::tls {

struct PeerCheck {
    bool ok = false;
    std::string ski;    // 40 lower-case hex, set when ok
    std::string reason; // precise, human-readable, set when !ok
};

// Does not take ownership of `cert`. Null → not ok ("peer sent no certificate").
PeerCheck check_peer_certificate(const X509* cert);

// SHA-1 over the uncompressed public point of the certificate's EC key, 40 lower-case hex; nullopt if the key
// is not an EC key.
std::optional<std::string> computed_ski(const X509* cert);

} // namespace ship::tls
