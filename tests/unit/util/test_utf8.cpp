// cut_utf8: never more than the limit, never half a character.
#include <catch2/catch.hpp>

#include "util/utf8.hpp"

#include <string>

using ship::util::cut_utf8;
using ship::util::max_close_reason_bytes;

TEST_CASE("cut_utf8 leaves a text within the limit as it is") {
    CHECK(cut_utf8("", 0).empty());
    CHECK(cut_utf8("abc", 3) == "abc");
    CHECK(cut_utf8("\xE2\x82\xAC", 3) == "\xE2\x82\xAC"); // € exactly fills the limit
}

TEST_CASE("cut_utf8 backs up to the start of a sequence the limit falls into") {
    const std::string euro = "\xE2\x82\xAC"; // 3 bytes
    CHECK(cut_utf8("a" + euro, 1) == "a");
    CHECK(cut_utf8("a" + euro, 2) == "a");
    CHECK(cut_utf8("a" + euro, 3) == "a");
    CHECK(cut_utf8("a" + euro + "b", 4) == "a" + euro);
    CHECK(cut_utf8(euro, 0).empty());
}

TEST_CASE("cut_utf8 at the close reason limit keeps whole characters only") {
    // 122 ASCII bytes, then a 4-byte emoji straddling byte 123: the emoji goes whole.
    const std::string text = std::string(max_close_reason_bytes - 1, 'x') + "\xF0\x9F\x98\x80" + "tail";
    const std::string cut = cut_utf8(text, max_close_reason_bytes);
    CHECK(cut == std::string(max_close_reason_bytes - 1, 'x'));
    CHECK(cut.size() <= max_close_reason_bytes);
}
