// EEBUS JSON (every object an array of single-key objects) <-> plain JSON, converted structurally both ways.
// Input is parsed without recursion and refused beyond max_depth nesting, so no input can exhaust the stack.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <rapidjson/document.h>

namespace ship::json {

// Deepest nesting of arrays/objects accepted in any input text (a SPINE datagram needs about 16).
inline constexpr std::size_t max_depth = 64;

struct CodecError {
    std::string reason;
};

// Parses UTF-8 JSON (trailing NUL bytes stripped, whitespace anywhere allowed) into `out`.
std::optional<CodecError> parse(std::string_view text, rapidjson::Document& out);

// parse() without its representability check (no walk over the document): the result may hold an infinite
// number (2e308) or a string that is not UTF-8 (RapidJSON 1.1.0 decodes a lone surrogate escape into such
// bytes). For readers that check every value they take out with value_problem() or write_plain().
std::optional<CodecError> parse_unchecked(std::string_view text, rapidjson::Document& out);

// Why this one value (not what it contains) cannot be used as it is, in parse()'s words: an infinite number,
// a string that is not UTF-8. nullopt for any other value.
std::optional<CodecError> value_problem(const rapidjson::Value& value);

// Compact text of a value.
std::string write(const rapidjson::Value& value);

// Compact text of the plain form of an EEBUS value: the bytes write(to_plain(eebus)) gives, in one walk
// without building the plain document. Refuses, with parse()'s words, a value that cannot be written
// faithfully (checked in document order, as parse() checks). `eebus` must be at most max_depth deep.
std::variant<std::string, CodecError> write_plain(const rapidjson::Value& eebus);

// True if to_plain(value) is an object: an object, or an array whose elements are all single-key objects
// (`[]` included).
bool is_object_like(const rapidjson::Value& value);

// Plain -> EEBUS. An object becomes an array of single-key objects in member order, `{}` becomes `[]`,
// arrays stay arrays with their elements converted. The `_root` form keeps the outermost object's braces
// (`{"connectionHello":[...]}`, `{"datagram":[...]}`). Values must be at most max_depth deep.
rapidjson::Value to_eebus(const rapidjson::Value& plain, rapidjson::Document::AllocatorType& alloc);
rapidjson::Value to_eebus_root(const rapidjson::Value& plain, rapidjson::Document::AllocatorType& alloc);

// EEBUS -> plain, the inverse: an array whose elements are all single-key objects becomes one object, and
// an empty array or object becomes `{}`; plain objects are accepted as they are.
rapidjson::Value to_plain(const rapidjson::Value& eebus, rapidjson::Document::AllocatorType& alloc);

// Text-level conversions. eebus_from_plain requires an object at the root.
std::variant<std::string, CodecError> eebus_from_plain(std::string_view plain);
std::variant<std::string, CodecError> plain_from_eebus(std::string_view eebus);

} // namespace ship::json
