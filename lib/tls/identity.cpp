// The node's own identity on disk. Losing or silently replacing it would change the SKI that every paired
// peer trusts, so anything unexpected is an error with a fix, never a reason to generate a new one.
#include "tls/identity.hpp"

#include <cerrno>
#include <cstdio>
#include <stdexcept>
#include <sys/stat.h>
#include <system_error>

#include "tls/certificate_builder.hpp"
#include "tls/openssl_error.hpp"
#include "tls/peer_check.hpp"
#include "tls/pem.hpp"
#include "util/atomic_file.hpp"

namespace ship::tls {
namespace {

namespace fs = std::filesystem;

constexpr const char* cert_file_name = "cert.pem";
constexpr const char* key_file_name = "key.pem";

// nullopt when missing; anything else odd (not a regular file, stat failure) throws.
std::optional<struct stat> stat_if_present(const fs::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return std::nullopt;
        throw std::system_error(errno, std::generic_category(), "stat '" + path.string() + "'");
    }
    if (!S_ISREG(st.st_mode)) throw std::runtime_error("'" + path.string() + "' is not a regular file");
    return st;
}

std::string octal_mode(mode_t mode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
    return buf;
}

std::string read_existing(const fs::path& path) {
    auto text = util::read_file(path);
    if (!text)
        throw std::runtime_error("'" + path.string() + "' disappeared while loading the SHIP identity");
    return *text;
}

Identity load_identity(const fs::path& cert_path, const fs::path& key_path, const struct stat& key_stat) {
    if ((key_stat.st_mode & 077) != 0)
        throw std::runtime_error(
            "private key '" + key_path.string() + "' has mode " + octal_mode(key_stat.st_mode) +
            " and is accessible by group or others; refusing to use it. Fix: chmod 600 '" +
            key_path.string() + "'");

    const auto key = parse_private_key_pem(read_existing(key_path));
    if (!key)
        throw std::runtime_error("'" + key_path.string() + "' holds no readable unencrypted private key");
    const auto cert = parse_certificate_pem(read_existing(cert_path));
    if (!cert) throw std::runtime_error("'" + cert_path.string() + "' holds no readable PEM certificate");

    if (X509_check_private_key(cert.get(), key.get()) != 1) {
        take_openssl_errors();
        throw std::runtime_error("certificate '" + cert_path.string() + "' does not match private key '" +
                                 key_path.string() + "'; restore the pair that belongs together");
    }
    const PeerCheck check = check_peer_certificate(cert.get());
    if (!check.ok)
        throw std::runtime_error("certificate '" + cert_path.string() +
                                 "' breaks the SHIP certificate rules: " + check.reason);
    return Identity{certificate_to_pem(cert.get()), private_key_to_pem(key.get()), check.ski};
}

} // namespace

Identity generate_identity(const Subject& subject) {
    const auto key = generate_ec_key("P-256");
    const auto cert = build_self_signed_certificate(key.get(), subject, SkiChoice::hash());
    // Our own certificate must pass the same rules we apply to peers, or peers would reject us.
    const PeerCheck check = check_peer_certificate(cert.get());
    if (!check.ok) throw std::logic_error("generated certificate breaks the SHIP rules: " + check.reason);
    return Identity{certificate_to_pem(cert.get()), private_key_to_pem(key.get()), check.ski};
}

Identity load_or_create_identity(const fs::path& state_dir, const Subject& subject) {
    util::ensure_private_dir(state_dir);
    const fs::path cert_path = state_dir / cert_file_name;
    const fs::path key_path = state_dir / key_file_name;
    const auto cert_stat = stat_if_present(cert_path);
    const auto key_stat = stat_if_present(key_path);

    if (cert_stat && key_stat) return load_identity(cert_path, key_path, *key_stat);
    if (cert_stat)
        throw std::runtime_error(
            "'" + cert_path.string() + "' exists but '" + key_path.string() +
            "' is missing; refusing to create a new SHIP identity (its SKI would differ from "
            "the one peers trust). Restore the key, or remove the certificate to start over "
            "with a new SKI.");
    if (key_stat)
        throw std::runtime_error(
            "'" + key_path.string() + "' exists but '" + cert_path.string() +
            "' is missing; refusing to create a new SHIP identity (its SKI would differ from "
            "the one peers trust). Restore the certificate, or remove the key to start over "
            "with a new SKI.");

    Identity identity = generate_identity(subject);
    // Key first: a crash in between leaves a lone key (reported above), never a certificate without its key.
    util::write_file_atomic(key_path, identity.private_key_pem);
    util::write_file_atomic(cert_path, identity.certificate_pem);
    return identity;
}

} // namespace ship::tls
