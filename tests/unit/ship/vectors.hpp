// The shared byte-exact vectors (tests/data, found through SHIPD_TEST_DATA), read at run time.
// A missing or unreadable file fails the test that asks for it, with the path in the message.
#pragma once

#include <string>
#include <vector>

#include "ship/frame.hpp"

namespace ship::test {

struct EebusPair {
    std::string name;
    std::string eebus; // wire text, with the suffix bytes the vector asks for (e.g. a trailing NUL)
    std::string plain;
};

struct DataVector {
    std::string name;
    std::string spine_plain;
    int type_byte = 0;
    std::string eebus;
};

struct MessageVector {
    std::string name;
    Bytes bytes; // type byte + JSON, or the raw hex for the CMI
};

std::vector<EebusPair> spine_payload_vectors();
std::vector<DataVector> data_message_vectors();
std::vector<MessageVector> ship_message_vectors();
// One control message by its vector name ("hello-ready", "access-methods", ...).
Bytes message_vector(const std::string& name);

} // namespace ship::test
