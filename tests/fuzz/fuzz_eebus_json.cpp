// Fuzz target: the EEBUS JSON codec (lib/ship/eebus_json.hpp) on arbitrary text, in both directions.
// Promises checked: no crash or sanitizer report, depth refused beyond max_depth, and the round trips below.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_support.hpp"
#include "ship/eebus_json.hpp"

namespace {

using ship::json::CodecError;
using Result = std::variant<std::string, CodecError>;

bool is_depth_refusal(const Result& r) {
    const auto* e = std::get_if<CodecError>(&r);
    return e && e->reason.rfind("JSON nested deeper than", 0) == 0;
}

std::size_t depth_of(const rapidjson::Value& v) {
    std::size_t deepest = 0;
    if (v.IsObject()) {
        for (const auto& m : v.GetObject())
            deepest = std::max(deepest, depth_of(m.value));
        return deepest + 1;
    }
    if (v.IsArray()) {
        for (const auto& e : v.GetArray())
            deepest = std::max(deepest, depth_of(e));
        return deepest + 1;
    }
    return 0;
}

// write(parse(x)) is a fixed point after one step, and what parse accepts is never deeper than max_depth.
void check_parse_write(std::string_view text) {
    rapidjson::Document doc;
    if (ship::json::parse(text, doc)) return;
    FUZZ_REQUIRE(depth_of(doc) <= ship::json::max_depth, "accepted " + ship::fuzz::printable(text));
    const std::string once = ship::json::write(doc);
    rapidjson::Document again;
    const auto err = ship::json::parse(once, again);
    FUZZ_REQUIRE(!err, "written text does not parse: " + ship::fuzz::printable(once) + ": " + err->reason);
    FUZZ_REQUIRE(ship::json::write(again) == once,
                 "write(parse(write(x))) differs for " + ship::fuzz::printable(once));
}

// EEBUS -> plain -> EEBUS -> plain gives the same plain text (the plain form is a fixed point); only the
// depth bound may refuse the EEBUS form of a deep plain value (lib/ship/README: the depth asymmetry).
void check_from_eebus(std::string_view text) {
    const Result plain = ship::json::plain_from_eebus(text);
    const auto* p = std::get_if<std::string>(&plain);
    if (!p) return;
    rapidjson::Document doc;
    FUZZ_REQUIRE(!ship::json::parse(*p, doc), "plain output does not parse: " + ship::fuzz::printable(*p));
    if (!doc.IsObject()) return; // eebus_from_plain wants an object root
    const Result eebus = ship::json::eebus_from_plain(*p);
    const auto* e = std::get_if<std::string>(&eebus);
    FUZZ_REQUIRE(e, "plain output refused by eebus_from_plain: " + ship::fuzz::printable(*p) + ": " +
                        std::get<CodecError>(eebus).reason);
    const Result back = ship::json::plain_from_eebus(*e);
    if (is_depth_refusal(back)) return;
    const auto* b = std::get_if<std::string>(&back);
    FUZZ_REQUIRE(b, "EEBUS output refused: " + ship::fuzz::printable(*e));
    FUZZ_REQUIRE(*b == *p, "plain -> EEBUS -> plain changed\n  " + ship::fuzz::printable(*p) + "\n  " +
                               ship::fuzz::printable(*b));
}

// plain -> EEBUS -> plain -> EEBUS gives the same EEBUS text (the EEBUS form is a fixed point).
void check_from_plain(std::string_view text) {
    const Result eebus = ship::json::eebus_from_plain(text);
    const auto* e = std::get_if<std::string>(&eebus);
    if (!e) return;
    const Result plain = ship::json::plain_from_eebus(*e);
    if (is_depth_refusal(plain)) return;
    const auto* p = std::get_if<std::string>(&plain);
    FUZZ_REQUIRE(p, "EEBUS output refused: " + ship::fuzz::printable(*e) + ": " +
                        std::get<CodecError>(plain).reason);
    const Result again = ship::json::eebus_from_plain(*p);
    const auto* a = std::get_if<std::string>(&again);
    FUZZ_REQUIRE(a, "plain output refused: " + ship::fuzz::printable(*p));
    FUZZ_REQUIRE(*a == *e, "EEBUS -> plain -> EEBUS changed\n  " + ship::fuzz::printable(*e) + "\n  " +
                               ship::fuzz::printable(*a));
}

// The Value-level conversions take any root (the text API wants an object for plain -> EEBUS).
void check_values(std::string_view text) {
    rapidjson::Document doc;
    if (ship::json::parse(text, doc)) return;
    rapidjson::Document out;
    const rapidjson::Value eebus = ship::json::to_eebus(doc, out.GetAllocator());
    const rapidjson::Value root = ship::json::to_eebus_root(doc, out.GetAllocator());
    const rapidjson::Value plain = ship::json::to_plain(doc, out.GetAllocator());
    FUZZ_REQUIRE(depth_of(plain) <= depth_of(doc), "to_plain made a value deeper");
    FUZZ_REQUIRE(depth_of(root) <= depth_of(eebus), "to_eebus_root deeper than to_eebus");
    (void)ship::json::write(eebus);
    (void)ship::json::write(plain);
}

// write_plain (what msg::decode hands applications) is write(to_plain(x)) in one walk, and on a document
// parse_unchecked took it refuses exactly what parse refuses, in the same words.
void check_write_plain(std::string_view text) {
    rapidjson::Document raw;
    if (ship::json::parse_unchecked(text, raw)) return;
    rapidjson::Document checked;
    const auto refused = ship::json::parse(text, checked);
    const Result plain = ship::json::write_plain(raw);
    if (refused) {
        const auto* e = std::get_if<CodecError>(&plain);
        FUZZ_REQUIRE(e && e->reason == refused->reason,
                     "write_plain took what parse refuses: " + ship::fuzz::printable(text));
        return;
    }
    rapidjson::Document out;
    const auto* p = std::get_if<std::string>(&plain);
    FUZZ_REQUIRE(p && *p == ship::json::write(ship::json::to_plain(checked, out.GetAllocator())),
                 "write_plain differs from write(to_plain): " + ship::fuzz::printable(text));
    FUZZ_REQUIRE(ship::json::is_object_like(checked) ==
                     ship::json::to_plain(checked, out.GetAllocator()).IsObject(),
                 "is_object_like disagrees with to_plain: " + ship::fuzz::printable(text));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_parse_write(text);
    check_from_eebus(text);
    check_from_plain(text);
    check_values(text);
    check_write_plain(text);
    return 0;
}
