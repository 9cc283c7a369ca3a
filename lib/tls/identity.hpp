// The node's own identity: an ECDSA P-256 self-signed certificate whose SKI names the node (SHIP §12.2).
// Created once in the state directory, loaded on every later start; the key file stays 0600.
#pragma once

#include <filesystem>
#include <string>

namespace ship::tls {

struct Subject {
    std::string common_name;  // SHIP ID (or brand-model-serial)
    std::string organization; // optional, empty = omitted
    std::string organizational_unit;
    std::string country; // optional, two letters
};

struct Identity {
    std::string certificate_pem;
    std::string private_key_pem;
    std::string ski; // 40 lower-case hex
};

// ECDSA P-256 key, self-signed ECDSA-SHA256, random 128-bit serial, 10 years, KeyUsage digitalSignature,
// BasicConstraints CA:TRUE, SubjectKeyIdentifier = SHA-1 of the uncompressed public point. Throws on failure.
Identity generate_identity(const Subject& subject);

// `cert.pem` + `key.pem` in `state_dir`: loaded if both exist, else generated and written atomically (0600).
// Refuses (throws std::runtime_error with the path and the fix) a key file readable by group or others, a
// certificate that does not match the key, or one that fails the SHIP certificate rules.
Identity load_or_create_identity(const std::filesystem::path& state_dir, const Subject& subject);

} // namespace ship::tls
