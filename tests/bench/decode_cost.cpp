// ship-decode-cost: decodes the SHIP vectors (tests/data) the way ship::Connection::receive does, many times
// over, so `valgrind --tool=callgrind` can count the instructions one control or data message costs.
//
//   SHIPD_TEST_DATA=tests/data valgrind --tool=callgrind --collect-atstart=no
//     --toggle-collect='*decode_round*' build/ship/tests/bench/ship-decode-cost control 1000   (one line)
//
// The collected instructions divided by (rounds x the message count it prints) is the cost per message.
// `control` decodes every control/end vector of ship-messages.json (the handshake's messages), `data` the
// data-message vector and each SPINE payload vector framed as a data message.
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "../unit/ship/vectors.hpp"
#include "ship/frame.hpp"
#include "ship/messages.hpp"

namespace {

std::vector<ship::Bytes> control_messages() {
    std::vector<ship::Bytes> out;
    for (auto& v : ship::test::ship_message_vectors())
        if (!ship::is_valid_cmi(v.bytes)) out.push_back(std::move(v.bytes));
    return out;
}

std::vector<ship::Bytes> data_messages() {
    std::vector<ship::Bytes> out;
    for (const auto& v : ship::test::data_message_vectors())
        out.push_back(ship::make_frame(static_cast<ship::MessageType>(v.type_byte), v.eebus));
    for (const auto& v : ship::test::spine_payload_vectors()) {
        auto framed = ship::msg::encode_data(v.plain);
        if (auto* bytes = std::get_if<ship::Bytes>(&framed)) out.push_back(std::move(*bytes));
    }
    return out;
}

// One pass over the messages as the SME's receive path takes them: frame split, then decode. Kept out of
// line so callgrind can collect exactly this (--toggle-collect).
[[gnu::noinline]] std::size_t decode_round(const std::vector<ship::Bytes>& messages) {
    std::size_t decoded = 0;
    for (const auto& m : messages) {
        const auto frame = ship::parse_frame(m);
        const auto* f = std::get_if<ship::Frame>(&frame);
        if (!f) continue;
        const auto message = ship::msg::decode(*f);
        if (std::holds_alternative<ship::msg::Message>(message)) ++decoded;
    }
    return decoded;
}

} // namespace

int main(int argc, char** argv) {
    const std::string_view kind = argc > 1 ? argv[1] : "control";
    const int rounds = argc > 2 ? std::atoi(argv[2]) : 1000;
    if ((kind != "control" && kind != "data") || rounds <= 0) {
        std::fprintf(stderr, "usage: ship-decode-cost control|data [ROUNDS]\n");
        return 2;
    }
    try {
        const auto messages = kind == "control" ? control_messages() : data_messages();
        std::size_t decoded = 0;
        for (int i = 0; i < rounds; ++i)
            decoded += decode_round(messages);
        if (decoded != messages.size() * static_cast<std::size_t>(rounds)) {
            std::fprintf(stderr, "only %zu of %zu decoded\n", decoded, messages.size() * rounds);
            return 1;
        }
        std::printf("%s: %zu messages x %d rounds decoded\n", std::string(kind).c_str(), messages.size(),
                    rounds);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    return 0;
}
