// Fuzz target: SHIP framing (ship::parse_frame) and message decoding (lib/ship/messages.hpp) on arbitrary
// WebSocket message bytes. Promises checked: no crash; a decoded message re-encodes to bytes that decode to
// the same message, and re-encoding those gives the same bytes again.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>

#include "fuzz_support.hpp"
#include "ship/frame.hpp"
#include "ship/messages.hpp"

namespace {

namespace msg = ship::msg;
using ship::fuzz::printable;

std::string text_of(const ship::Bytes& bytes) {
    return std::string(bytes.begin(), bytes.end());
}

std::variant<msg::Message, std::string> decode_bytes(const ship::Bytes& bytes) {
    auto frame = ship::parse_frame(bytes);
    if (const auto* e = std::get_if<ship::FrameError>(&frame)) return "frame: " + e->reason;
    auto decoded = msg::decode(std::get<ship::Frame>(frame));
    if (const auto* e = std::get_if<msg::DecodeError>(&decoded)) return "decode: " + e->reason;
    return std::get<msg::Message>(decoded);
}

struct Encoder {
    // nullopt-like: an empty Bytes means "this message has no encoder for these values" (data, below).
    ship::Bytes operator()(const msg::Data& d) const {
        // Only what encode_data can express: protocolId ee1.0, no extension, an object payload.
        if (d.protocol_id != msg::protocol_id_spine || d.extension) return {};
        auto r = msg::encode_data(d.payload);
        if (const auto* b = std::get_if<ship::Bytes>(&r)) return *b;
        return {};
    }
    template <typename M>
    ship::Bytes operator()(const M& m) const {
        return msg::encode(m);
    }
};

bool is_depth_refusal(const std::string& reason) {
    return reason.find("JSON nested deeper than") != std::string::npos;
}

void check_reencode(const msg::Message& m) {
    const ship::Bytes bytes = std::visit(Encoder{}, m);
    if (bytes.empty()) return;
    const auto again = decode_bytes(bytes);
    if (const auto* e = std::get_if<std::string>(&again)) {
        // A data payload's EEBUS form can be deeper than the plain form it came from (README: depth
        // asymmetry).
        if (std::holds_alternative<msg::Data>(m) && is_depth_refusal(*e)) return;
        ship::fuzz::invariant_broken(__FILE__, __LINE__, "re-encoded message decodes",
                                     std::string(msg::name(m)) + " -> " + printable(text_of(bytes)) + ": " +
                                         *e);
    }
    const auto& m2 = std::get<msg::Message>(again);
    FUZZ_REQUIRE(m2 == m,
                 std::string(msg::name(m)) + " changed by encode/decode: " + printable(text_of(bytes)));
    const ship::Bytes bytes2 = std::visit(Encoder{}, m2);
    FUZZ_REQUIRE(bytes2 == bytes, "encoding is not stable: " + printable(text_of(bytes)) + " vs " +
                                      printable(text_of(bytes2)));
}

void check_frame(std::span<const std::uint8_t> message) {
    auto parsed = ship::parse_frame(message);
    if (std::holds_alternative<ship::FrameError>(parsed)) {
        FUZZ_REQUIRE(!ship::is_valid_cmi(message), "the CMI is refused as a frame");
        return;
    }
    const auto& frame = std::get<ship::Frame>(parsed);
    FUZZ_REQUIRE(static_cast<std::uint8_t>(frame.type) == message[0],
                 "frame type differs from the type byte");
    if (frame.type != ship::MessageType::init) {
        FUZZ_REQUIRE(!frame.payload.empty() && frame.payload.back() != '\0', "payload empty or ends in NUL");
        FUZZ_REQUIRE(ship::is_valid_utf8(frame.payload), "accepted payload is not UTF-8");
        // make_frame is the inverse of parse_frame for what parse_frame accepts.
        auto again = ship::parse_frame(ship::make_frame(frame.type, frame.payload));
        const auto* f2 = std::get_if<ship::Frame>(&again);
        FUZZ_REQUIRE(f2 && f2->type == frame.type && f2->payload == frame.payload, "make_frame/parse_frame");
    }
    auto decoded = msg::decode(frame);
    if (const auto* m = std::get_if<msg::Message>(&decoded)) check_reencode(*m);
}

// decode also gets frames parse_frame would refuse (any type byte, non-UTF-8 text): it must refuse or
// decode them without harm.
void check_raw_decode(std::span<const std::uint8_t> message) {
    if (message.empty()) return;
    ship::Frame frame{static_cast<ship::MessageType>(message[0] & 0x03),
                      std::string(message.begin() + 1, message.end())};
    auto decoded = msg::decode(frame);
    if (const auto* m = std::get_if<msg::Message>(&decoded)) (void)msg::name(*m);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::uint8_t> message(data, size);
    check_frame(message);
    check_raw_decode(message);
    return 0;
}
