// OpenSSL failures as exceptions: the message says what shipd was doing and what OpenSSL reported, and the
// thread's OpenSSL error queue is left empty so a later failure is not blamed on an old one.
#pragma once

#include <stdexcept>
#include <string>

namespace ship::tls {

// Drains the thread's OpenSSL error queue into one line ("" if it was empty).
std::string take_openssl_errors();

// Thrown for failures inside OpenSSL (out of memory, provider errors), not for rule violations.
class OpenSslError : public std::runtime_error {
public:
    explicit OpenSslError(const std::string& what_shipd_was_doing);
};

} // namespace ship::tls
