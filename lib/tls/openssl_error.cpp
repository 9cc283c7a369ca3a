// OpenSSL failures as exceptions with the queued OpenSSL reasons attached.
#include "tls/openssl_error.hpp"

#include <array>

#include <openssl/err.h>

namespace ship::tls {

std::string take_openssl_errors() {
    std::string out;
    while (const unsigned long code = ERR_get_error()) {
        std::array<char, 256> buf{};
        ERR_error_string_n(code, buf.data(), buf.size());
        if (!out.empty()) out += "; ";
        out += buf.data();
    }
    return out;
}

namespace {
std::string with_reasons(const std::string& what) {
    const std::string reasons = take_openssl_errors();
    return reasons.empty() ? what : what + ": " + reasons;
}
} // namespace

OpenSslError::OpenSslError(const std::string& what_shipd_was_doing)
    : std::runtime_error(with_reasons(what_shipd_was_doing)) {}

} // namespace ship::tls
