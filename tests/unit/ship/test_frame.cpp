#include "ship/frame.hpp"

#include <catch2/catch.hpp>

using ship::Bytes;
using ship::Frame;
using ship::FrameError;
using ship::MessageType;

namespace {
Bytes bytes(std::initializer_list<int> v) {
    Bytes b;
    for (int x : v)
        b.push_back(static_cast<std::uint8_t>(x));
    return b;
}
Bytes with_type(int type, std::string_view text) {
    Bytes b{static_cast<std::uint8_t>(type)};
    b.insert(b.end(), text.begin(), text.end());
    return b;
}
} // namespace

TEST_CASE("CMI is exactly 00 00", "[frame]") {
    CHECK(ship::cmi_message() == bytes({0, 0}));
    CHECK(ship::is_valid_cmi(bytes({0, 0})));
    CHECK_FALSE(ship::is_valid_cmi(bytes({1, 0}))); // TC_SHIP_CMI_001: control type where init belongs
    CHECK_FALSE(ship::is_valid_cmi(bytes({0, 1}))); // TC_SHIP_CMI_005: CmiHead 1
    CHECK_FALSE(ship::is_valid_cmi(bytes({0, 0, 0})));
}

TEST_CASE("a control frame splits into type and JSON text", "[frame]") {
    const auto r = ship::parse_frame(with_type(1, R"({"accessMethodsRequest":[]})"));
    REQUIRE(std::holds_alternative<Frame>(r));
    CHECK(std::get<Frame>(r).type == MessageType::control);
    CHECK(std::get<Frame>(r).payload == R"({"accessMethodsRequest":[]})");
}

TEST_CASE("trailing NUL bytes after the JSON are stripped", "[frame]") {
    auto msg = with_type(2, "{}");
    msg.push_back(0);
    msg.push_back(0);
    const auto r = ship::parse_frame(msg);
    REQUIRE(std::holds_alternative<Frame>(r));
    CHECK(std::get<Frame>(r).payload == "{}");
}

TEST_CASE("malformed frames are rejected with a reason", "[frame]") {
    SECTION("empty and 1-byte messages (TC_SHIP_MSG_001)") {
        CHECK(std::get<FrameError>(ship::parse_frame(Bytes{})).reason == "message shorter than 2 bytes");
        CHECK(std::get<FrameError>(ship::parse_frame(bytes({2}))).reason == "message shorter than 2 bytes");
    }
    SECTION("unknown type byte (TC_SHIP_MSG_002)") {
        CHECK(std::get<FrameError>(ship::parse_frame(bytes({0xFF, 0x20}))).reason ==
              "unknown SHIP message type byte 255");
        CHECK(std::holds_alternative<FrameError>(ship::parse_frame(bytes({0x7F, '{', '}'}))));
    }
    SECTION("only NUL after the type byte") {
        CHECK(std::get<FrameError>(ship::parse_frame(bytes({1, 0}))).reason ==
              "message has a type byte but no value");
    }
    SECTION("invalid UTF-8") {
        CHECK(std::get<FrameError>(ship::parse_frame(bytes({1, '"', 0xC3, 0x28, '"'}))).reason ==
              "message value is not valid UTF-8");
    }
}

TEST_CASE("UTF-8 validation follows RFC 3629", "[frame]") {
    CHECK(ship::is_valid_utf8("plain"));
    CHECK(ship::is_valid_utf8("\xC3\xA4\xE2\x82\xAC\xF0\x9F\x98\x80")); // ä € 😀
    CHECK_FALSE(ship::is_valid_utf8("\xC0\xAF"));                       // overlong '/'
    CHECK_FALSE(ship::is_valid_utf8("\xED\xA0\x80"));                   // surrogate
    CHECK_FALSE(ship::is_valid_utf8("\xF4\x90\x80\x80"));               // above U+10FFFF
    CHECK_FALSE(ship::is_valid_utf8("\xE2\x82"));                       // truncated
}

TEST_CASE("make_frame puts the type byte first", "[frame]") {
    CHECK(ship::make_frame(MessageType::end, "{}") == with_type(3, "{}"));
}
