#include "ship/eebus_json.hpp"

#include <cmath>

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace ship::json {

namespace {

using rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

// Counted before parsing, so a hostile 100 000-deep input is refused without building a DOM for it.
// Brackets inside strings do not count; the parser judges everything else.
std::optional<std::size_t> nesting_beyond_limit(std::string_view text) {
    std::size_t depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (c == '\\')
                escaped = true;
            else if (c == '"')
                in_string = false;
            continue;
        }
        switch (c) {
        case '"':
            in_string = true;
            break;
        case '[':
        case '{':
            if (++depth > max_depth) return i;
            break;
        case ']':
        case '}':
            if (depth > 0) --depth;
            break;
        default:
            break;
        }
    }
    return std::nullopt;
}

// RapidJSON 1.1.0 accepts a number that rounds to infinity (e.g. 2e308), and its Writer then stops at it and
// leaves truncated text; such a number is refused when reading. Values reaching here are depth-checked.
bool has_non_finite_number(const Value& v) {
    if (v.IsDouble()) return !std::isfinite(v.GetDouble());
    if (v.IsObject()) {
        for (const auto& m : v.GetObject())
            if (has_non_finite_number(m.value)) return true;
    } else if (v.IsArray()) {
        for (const auto& e : v.GetArray())
            if (has_non_finite_number(e)) return true;
    }
    return false;
}

bool is_single_key_object(const Value& v) {
    return v.IsObject() && v.MemberCount() == 1;
}

Value copy_scalar(const Value& v, Allocator& alloc) {
    return Value(v, alloc);
}

} // namespace

std::optional<CodecError> parse(std::string_view text, rapidjson::Document& out) {
    while (!text.empty() && text.back() == '\0')
        text.remove_suffix(1);
    if (text.empty()) return CodecError{"empty JSON text"};
    if (const auto at = nesting_beyond_limit(text))
        return CodecError{"JSON nested deeper than " + std::to_string(max_depth) + " levels (at offset " +
                          std::to_string(*at) + ")"};
    constexpr unsigned flags = rapidjson::kParseIterativeFlag | rapidjson::kParseFullPrecisionFlag |
                               rapidjson::kParseValidateEncodingFlag;
    out.Parse<flags>(text.data(), text.size());
    if (out.HasParseError())
        return CodecError{std::string("invalid JSON at offset ") + std::to_string(out.GetErrorOffset()) +
                          ": " + rapidjson::GetParseError_En(out.GetParseError())};
    if (has_non_finite_number(out)) return CodecError{"a number in the JSON is too large for a double"};
    return std::nullopt;
}

std::string write(const Value& value) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    value.Accept(writer);
    return std::string(buffer.GetString(), buffer.GetSize());
}

Value to_eebus(const Value& plain, Allocator& alloc) {
    if (plain.IsObject()) {
        Value list(rapidjson::kArrayType);
        for (const auto& m : plain.GetObject()) {
            Value entry(rapidjson::kObjectType);
            entry.AddMember(Value(m.name, alloc), to_eebus(m.value, alloc), alloc);
            list.PushBack(entry, alloc);
        }
        return list;
    }
    if (plain.IsArray()) {
        Value list(rapidjson::kArrayType);
        for (const auto& e : plain.GetArray())
            list.PushBack(to_eebus(e, alloc), alloc);
        return list;
    }
    return copy_scalar(plain, alloc);
}

Value to_eebus_root(const Value& plain, Allocator& alloc) {
    if (!plain.IsObject()) return to_eebus(plain, alloc);
    Value root(rapidjson::kObjectType);
    for (const auto& m : plain.GetObject())
        root.AddMember(Value(m.name, alloc), to_eebus(m.value, alloc), alloc);
    return root;
}

Value to_plain(const Value& eebus, Allocator& alloc) {
    if (eebus.IsArray()) {
        const auto items = eebus.GetArray();
        bool all_single = true;
        for (const auto& e : items)
            all_single = all_single && is_single_key_object(e);
        if (all_single) { // includes `[]`: EEBUS writes an empty object that way
            Value object(rapidjson::kObjectType);
            for (const auto& e : items) {
                const auto& m = *e.MemberBegin();
                object.AddMember(Value(m.name, alloc), to_plain(m.value, alloc), alloc);
            }
            return object;
        }
        Value list(rapidjson::kArrayType);
        for (const auto& e : items)
            list.PushBack(to_plain(e, alloc), alloc);
        return list;
    }
    if (eebus.IsObject()) {
        Value object(rapidjson::kObjectType);
        for (const auto& m : eebus.GetObject())
            object.AddMember(Value(m.name, alloc), to_plain(m.value, alloc), alloc);
        return object;
    }
    return copy_scalar(eebus, alloc);
}

std::variant<std::string, CodecError> eebus_from_plain(std::string_view plain) {
    rapidjson::Document in;
    if (auto err = parse(plain, in)) return *err;
    if (!in.IsObject()) return CodecError{"plain JSON must be an object at the root"};
    rapidjson::Document out;
    const Value converted = to_eebus_root(in, out.GetAllocator());
    return write(converted);
}

std::variant<std::string, CodecError> plain_from_eebus(std::string_view eebus) {
    rapidjson::Document in;
    if (auto err = parse(eebus, in)) return *err;
    rapidjson::Document out;
    const Value converted = to_plain(in, out.GetAllocator());
    return write(converted);
}

} // namespace ship::json
