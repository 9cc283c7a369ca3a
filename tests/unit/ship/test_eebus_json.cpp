#include "ship/eebus_json.hpp"

#include <cmath>

#include <catch2/catch.hpp>

#include "vectors.hpp"

using ship::json::CodecError;

namespace {
std::string to_eebus(std::string_view plain) {
    auto r = ship::json::eebus_from_plain(plain);
    if (auto* e = std::get_if<CodecError>(&r)) FAIL("eebus_from_plain failed: " << e->reason);
    return std::get<std::string>(r);
}
std::string to_plain(std::string_view eebus) {
    auto r = ship::json::plain_from_eebus(eebus);
    if (auto* e = std::get_if<CodecError>(&r)) FAIL("plain_from_eebus failed: " << e->reason);
    return std::get<std::string>(r);
}
std::string error_of(const std::variant<std::string, CodecError>& r) {
    REQUIRE(std::holds_alternative<CodecError>(r));
    return std::get<CodecError>(r).reason;
}
std::string nested(std::size_t depth, char open, char close) {
    return std::string(depth, open) + std::string(depth, close);
}
} // namespace

TEST_CASE("every SPINE payload vector converts byte-exactly in both directions", "[json][vectors]") {
    const auto vectors = ship::test::spine_payload_vectors();
    REQUIRE(vectors.size() >= 2);
    for (const auto& v : vectors) {
        INFO(v.name);
        CHECK(to_plain(v.eebus) == v.plain);
        std::string wire = v.eebus;
        while (!wire.empty() && wire.back() == '\0')
            wire.pop_back();
        CHECK(to_eebus(v.plain) == wire);
    }
}

TEST_CASE("a trailing NUL after the EEBUS text is stripped", "[json]") {
    const auto vectors = ship::test::spine_payload_vectors();
    const auto it = std::find_if(vectors.begin(), vectors.end(), [](const auto& v) {
        return v.name == "device-classification-reply-trailing-nul";
    });
    REQUIRE(it != vectors.end());
    REQUIRE(it->eebus.back() == '\0');
    CHECK(to_plain(it->eebus) == it->plain);
    CHECK(to_plain(std::string(R"({"a":[{"b":1}]})") + '\0' + '\0') == R"({"a":{"b":1}})");
}

TEST_CASE("empty containers: {} is sent as [], and both [] and {} are read as {}", "[json]") {
    CHECK(to_eebus(R"({"accessMethodsRequest":{}})") == R"({"accessMethodsRequest":[]})");
    CHECK(to_plain(R"({"accessMethodsRequest":[]})") == R"({"accessMethodsRequest":{}})");
    CHECK(to_plain(R"({"accessMethodsRequest":{}})") == R"({"accessMethodsRequest":{}})");
    CHECK(to_eebus("{}") == "{}");
}

TEST_CASE("arrays stay arrays; an array of objects becomes an array of arrays", "[json]") {
    CHECK(to_eebus(R"({"cmd":[{"a":1},{"b":{"c":[1,2]}}]})") ==
          R"({"cmd":[[{"a":1}],[{"b":[{"c":[1,2]}]}]]})");
    CHECK(to_plain(R"({"cmd":[[{"a":1}],[{"b":[{"c":[1,2]}]}]]})") ==
          R"({"cmd":[{"a":1},{"b":{"c":[1,2]}}]})");
    CHECK(to_eebus(R"({"s":{"x":"y","n":-1.5,"t":true,"f":false,"z":null}})") ==
          R"({"s":[{"x":"y"},{"n":-1.5},{"t":true},{"f":false},{"z":null}]})");
}

TEST_CASE("member order is kept as given, not sorted", "[json]") {
    CHECK(to_eebus(R"({"m":{"z":1,"a":2,"m":3}})") == R"({"m":[{"z":1},{"a":2},{"m":3}]})");
    CHECK(to_plain(R"({"m":[{"z":1},{"a":2},{"m":3}]})") == R"({"m":{"z":1,"a":2,"m":3}})");
}

TEST_CASE("strings keep brackets, quotes and non-ASCII unchanged (structural, not textual)", "[json]") {
    CHECK(to_eebus(R"({"m":{"s":"[{},{}] \"q\" \u00e4 €"}})") ==
          "{\"m\":[{\"s\":\"[{},{}] \\\"q\\\" \xC3\xA4 \xE2\x82\xAC\"}]}");
    CHECK(to_plain("{\"m\":[{\"s\":\"}]\"}]}") == "{\"m\":{\"s\":\"}]\"}}");
}

TEST_CASE("TC_SHIP_MSG_003: whitespace around every structural character is accepted", "[json]") {
    CHECK(to_plain(" \t\r\n{ \t\r\n\"accessMethodsRequest\" \t\r\n: \t\r\n[ \t\r\n] \t\r\n} \t\r\n") ==
          R"({"accessMethodsRequest":{}})");
    CHECK(to_plain("{\n  \"a\" : [ { \"b\" : [ 1 , 2 ] } , { \"c\" : \"d\" } ]\n}") ==
          R"({"a":{"b":[1,2],"c":"d"}})");
}

TEST_CASE("100 000-deep nesting is refused with a reason, not a crash", "[json][depth]") {
    CHECK(error_of(ship::json::plain_from_eebus(nested(100000, '[', ']'))) ==
          "JSON nested deeper than 64 levels (at offset 64)");
    std::string objects;
    for (int i = 0; i < 100000; ++i)
        objects += R"({"a":)";
    objects += "1" + std::string(100000, '}');
    CHECK(error_of(ship::json::plain_from_eebus(objects)).starts_with("JSON nested deeper than 64 levels"));
    CHECK(error_of(ship::json::eebus_from_plain(objects)).starts_with("JSON nested deeper than 64 levels"));
    // Unbalanced deep input is refused the same way.
    CHECK(error_of(ship::json::plain_from_eebus(std::string(100000, '['))).starts_with("JSON nested deeper"));
}

TEST_CASE("nesting up to the limit is accepted; one more level is not", "[json][depth]") {
    CHECK(to_plain(nested(64, '[', ']')).size() > 0);
    CHECK(error_of(ship::json::plain_from_eebus(nested(65, '[', ']'))).starts_with("JSON nested deeper"));
    // Brackets inside strings do not count.
    CHECK(to_plain("{\"s\":\"" + std::string(1000, '[') + "\"}") ==
          "{\"s\":\"" + std::string(1000, '[') + "\"}");
}

TEST_CASE("invalid JSON is refused with the offset and the parser's reason", "[json]") {
    CHECK(error_of(ship::json::plain_from_eebus(R"({"a":)")) == "invalid JSON at offset 5: Invalid value.");
    CHECK(error_of(ship::json::plain_from_eebus("")) == "empty JSON text");
    CHECK(error_of(ship::json::plain_from_eebus(std::string(3, '\0'))) == "empty JSON text");
    CHECK(error_of(ship::json::plain_from_eebus(R"({"a":1} x)")).starts_with("invalid JSON at offset 8"));
    CHECK(error_of(ship::json::plain_from_eebus("{\"a\":\"\xC3\x28\"}")).starts_with("invalid JSON"));
    CHECK(error_of(ship::json::eebus_from_plain("[1,2]")) == "plain JSON must be an object at the root");
}

// Found by tests/fuzz (fuzz_eebus_json): RapidJSON took 184467441e300 as infinity and its writer then stopped
// there, so the "converted" text was cut off at the number.
TEST_CASE("a number too large for a double is refused, never written as truncated text", "[json][fuzz]") {
    CHECK(error_of(ship::json::plain_from_eebus(R"({"a":[{"b":184467441e300}]})")) ==
          "a number in the JSON is too large for a double");
    CHECK(error_of(ship::json::eebus_from_plain(R"({"a":{"b":-2e308}})")) ==
          "a number in the JSON is too large for a double");
    CHECK(to_plain(R"({"a":[{"b":1.7976931348623157e308},{"c":-0.0},{"d":4.9e-324}]})") ==
          R"({"a":{"b":1.7976931348623157e308,"c":-0.0,"d":5e-324}})");
}

// Found by the CI fuzz smoke (fuzz_eebus_json): 116 significant digits times 1e300 sent RapidJSON 1.1.0's
// full-precision path past the end of its cached-power table (UBSan: index 92 out of bounds for [87]).
TEST_CASE("a number far beyond a double's range is refused without reading past RapidJSON's tables",
          "[json][fuzz]") {
    const std::string digits = "44" + std::string(112, '2') + "21";
    CHECK(error_of(ship::json::plain_from_eebus("{\"a\":[{\"b\":" + digits + "e300}]}")) ==
          "a number in the JSON is too large for a double");
    CHECK(error_of(ship::json::eebus_from_plain("{\"a\":" + digits + "e300}")) ==
          "a number in the JSON is too large for a double");
    CHECK(to_plain(R"({"a":[{"b":1e308},{"c":0.000001e310}]})") == R"({"a":{"b":1e308,"c":1e304}})");
}

// Found by tests/fuzz: RapidJSON 1.1.0 decodes an escaped lone low surrogate into bytes that are not UTF-8,
// which would then reach applications (and D-Bus, which refuses such strings).
TEST_CASE("a lone UTF-16 surrogate escape is refused; a surrogate pair is read as its character",
          "[json][fuzz]") {
    CHECK(error_of(ship::json::plain_from_eebus(R"({"a":[{"s":"x\udc00y"}]})")) ==
          "a string in the JSON holds a lone UTF-16 surrogate");
    CHECK(error_of(ship::json::plain_from_eebus(R"({"\ude00":1})")) ==
          "a string in the JSON holds a lone UTF-16 surrogate");
    CHECK(error_of(ship::json::plain_from_eebus(R"({"s":"\ud83d"})")).starts_with("invalid JSON"));
    CHECK(to_plain(R"({"a":[{"s":"\ud83d\ude00"}]})") == "{\"a\":{\"s\":\"\xF0\x9F\x98\x80\"}}");
}

// Found by tests/fuzz (clang UBSan): RapidJSON 1.1.0's full-precision path has undefined behaviour for a zero
// with an exponent or many fraction digits, and for digits that round past 2^64-1; they read right all the
// same.
TEST_CASE("numbers on RapidJSON's undefined full-precision paths read right", "[json][fuzz]") {
    CHECK(to_plain(R"({"a":[{"z":0e133},{"y":-0.00000000000000000000000000},{"x":0.1},{"w":0E-400}]})") ==
          R"({"a":{"z":0.0,"y":-0.0,"x":0.1,"w":0.0}})");
    CHECK(to_plain(R"({"s":"0e133","n":[1e5,-0,0.5]})") == R"({"s":"0e133","n":[100000.0,0,0.5]})");
    // The same path rounded 18446744073709551615|6... up past 2^64-1 to a significand of zero; such a text is
    // read with normal precision, which is within one ulp.
    rapidjson::Document doc;
    REQUIRE(
        doc.Parse(to_plain(R"({"n":[184467440737095516156,1844674407370955161.56e1,18446744073709551615]})")
                      .c_str())
            .IsObject());
    const auto& n = doc["n"];
    const auto within_ulp = [](double x, double exact) {
        return x == exact || std::nextafter(x, exact) == exact;
    };
    CHECK(within_ulp(n[0].GetDouble(), 184467440737095516160.0));
    CHECK(within_ulp(n[1].GetDouble(), 18446744073709551616.0));
    CHECK(n[2].GetUint64() == 18446744073709551615U);
}

// Found by tests/fuzz (fuzz_frame_messages, clang UBSan) while measuring decode cost: a number far below a
// double's range written with a long zero fraction sends RapidJSON 1.1.0's full-precision path to a cached
// power with a wrapped index; a plain -O2 build crashes (SIGSEGV) there, so one data message from a peer
// could end shipd. Such numbers are read with normal precision, which gives their value: zero.
TEST_CASE("a number far below a double's range with a long zero fraction reads as zero, without a crash",
          "[json][fuzz]") {
    const std::string tiny = "0." + std::string(330, '0') + "1585947013696978944";
    CHECK(to_plain(R"({"a":[{"t":)" + tiny + R"(},{"n":-)" + tiny + "}]}") == R"({"a":{"t":0.0,"n":-0.0}})");
    CHECK(to_plain(R"({"t":0.)" + std::string(400, '0') + std::string(100, '7') + "}") == R"({"t":0.0})");
    // Just above the line, full precision still reads a subnormal exactly.
    rapidjson::Document doc;
    REQUIRE(doc.Parse(to_plain(R"({"s":0.)" + std::string(320, '0') + "15}").c_str()).IsObject());
    CHECK(doc["s"].GetDouble() == 1.5e-321);
}

// msg::decode writes what applications get with write_plain (one walk, no plain DOM): it must give exactly
// the bytes of the two-step conversion, and refuse exactly what parse() refuses, in its words.
TEST_CASE("write_plain gives the bytes of write(to_plain(x)) and refuses what parse() refuses",
          "[json][decode-cost]") {
    std::vector<std::string> texts{"[]",
                                   "{}",
                                   "[[]]",
                                   R"([{"a":1}])",
                                   R"([{"a":1},{"a":2}])",
                                   R"([{"a":1,"b":2}])",
                                   R"([{"a":1},2])",
                                   R"({"x":[{"y":[]}],"z":[1,[{"q":"s"}],{}]})",
                                   R"([{"n":1.50},{"i":-0},{"u":18446744073709551615}])",
                                   R"({"s":"\u00e4 [{\"}] \ud83d\ude00"})",
                                   R"([null,true,false,"",0.1e-7])"};
    for (const auto& v : ship::test::spine_payload_vectors())
        texts.push_back(v.eebus);
    for (const auto& text : texts) {
        INFO(text);
        rapidjson::Document doc;
        REQUIRE_FALSE(ship::json::parse(text, doc));
        rapidjson::Document out;
        const auto plain = ship::json::write_plain(doc);
        REQUIRE(std::holds_alternative<std::string>(plain));
        CHECK(std::get<std::string>(plain) ==
              ship::json::write(ship::json::to_plain(doc, out.GetAllocator())));
        CHECK(ship::json::is_object_like(doc) == ship::json::to_plain(doc, out.GetAllocator()).IsObject());
    }
    for (const std::string text : {R"([{"a":[{"s":"x\udc00y"}]}])", R"({"\ude00":1})", R"([1,{"b":2e308}])",
                                   R"([{"k":[{"\udc00":0}]}])"}) {
        INFO(text);
        rapidjson::Document parsed;
        const auto refused = ship::json::parse(text, parsed);
        REQUIRE(refused);
        rapidjson::Document doc;
        REQUIRE_FALSE(ship::json::parse_unchecked(text, doc));
        CHECK(error_of(ship::json::write_plain(doc)) == refused->reason);
    }
}
