#include "ship/eebus_json.hpp"

#include <algorithm>
#include <cmath>

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "ship/frame.hpp"

namespace ship::json {

namespace {

using rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

// What a pass over the text learns before any DOM is built: where nesting first goes beyond max_depth (so a
// hostile 100 000-deep input is refused without parsing it), and whether a number would take RapidJSON
// 1.1.0's full-precision path into undefined behaviour (fixed in later RapidJSON): its DiyFp step calls
// __builtin_clzll(0) and then shifts by the garbage count when the digits are all zero with an exponent or
// over 22 fraction digits (0e133), or when the significant digits start 18446744073709551615 and the next
// digit rounds that up past 2^64-1; and its cached-power table is indexed out of bounds when the number's
// decimal magnitude is far beyond a double's (4422…2e300), or far below it (0.000…015 with 330 zeros: an
// index computed from a negative exponent wraps; a plain -O2 build crashes there). Such a text is parsed
// with normal precision (exact for zeros and for what lies below the smallest subnormal, which rounds to
// zero; within an ulp for the rest; infinity for the too large, which is then refused). Strings are skipped;
// the parser judges them.
struct TextScan {
    std::optional<std::size_t> too_deep_at;
    bool full_precision_unsafe = false;
};

// Significant digits of a number, in order, ignoring the leading zeros and the decimal point.
class SignificantDigits {
public:
    void add(char d) {
        if (count_ == 0 && d == '0') return;
        static constexpr std::string_view max_u64 = "18446744073709551615";
        if (count_ < max_u64.size())
            prefix_is_max_ = prefix_is_max_ && d == max_u64[count_];
        else if (count_ == max_u64.size())
            rounds_past_max_ = prefix_is_max_ && d >= '5';
        ++count_;
    }
    bool all_zero() const { return count_ == 0; }
    bool rounds_past_max() const { return rounds_past_max_; }

private:
    std::size_t count_ = 0;
    bool prefix_is_max_ = true;
    bool rounds_past_max_ = false;
};

TextScan scan_text(std::string_view text) {
    TextScan scan;
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
            if (++depth > max_depth) {
                scan.too_deep_at = i;
                return scan;
            }
            break;
        case ']':
        case '}':
            if (depth > 0) --depth;
            break;
        case '-':
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7':
        case '8':
        case '9': {
            const auto digit = [&](std::size_t k) {
                return k < text.size() && text[k] >= '0' && text[k] <= '9';
            };
            std::size_t j = c == '-' ? i + 1 : i;
            SignificantDigits mantissa;
            long long integer_digits = 0; // significant ones: the number is below 10^integer_digits × 10^exp
            for (; digit(j); ++j) {
                mantissa.add(text[j]);
                if (integer_digits > 0 || text[j] != '0') ++integer_digits;
            }
            std::size_t fraction_digits = 0;
            long long leading_fraction_zeros = 0; // of 0.000ddd: the number is below 10^-zeros × 10^exp
            if (j < text.size() && text[j] == '.')
                for (++j; digit(j); ++j, ++fraction_digits) {
                    if (integer_digits == 0 && mantissa.all_zero() && text[j] == '0')
                        ++leading_fraction_zeros;
                    mantissa.add(text[j]);
                }
            bool exponent = false;
            bool exponent_negative = false;
            long long exponent_value = 0; // saturates: only "far beyond 308" matters
            if (j < text.size() && (text[j] == 'e' || text[j] == 'E')) {
                exponent = true;
                ++j;
                if (j < text.size() && (text[j] == '+' || text[j] == '-'))
                    exponent_negative = text[j++] == '-';
                for (; digit(j); ++j)
                    exponent_value = std::min<long long>(exponent_value * 10 + (text[j] - '0'), 1'000'000);
            }
            const long long magnitude = (integer_digits > 0 ? integer_digits : -leading_fraction_zeros) +
                                        (exponent_negative ? -exponent_value : exponent_value);
            // RapidJSON's fast path reads a zero exactly up to 22 fraction digits and no exponent. Below
            // 10^-323 a number is under half the smallest subnormal (4.9e-324): zero in either precision. The
            // out-of-bounds index starts around 10^-329.
            if ((mantissa.all_zero() && (exponent || fraction_digits > 22)) || mantissa.rounds_past_max() ||
                magnitude > 309 || (!mantissa.all_zero() && magnitude < -323))
                scan.full_precision_unsafe = true;
            i = j - 1; // resumes at the character that ended the number
            break;
        }
        default:
            break;
        }
    }
    return scan;
}

// RapidJSON 1.1.0 accepts what it cannot write back: a number that rounds to infinity (e.g. 2e308; its Writer
// stops there and leaves truncated text) and a lone low surrogate escape (\uDC00-\uDFFF, which it turns into
// invalid UTF-8). This value alone; unrepresentable() looks inside.
std::optional<std::string> scalar_problem(const Value& v) {
    if (v.IsDouble() && !std::isfinite(v.GetDouble()))
        return "a number in the JSON is too large for a double";
    if (v.IsString() && !is_valid_utf8(std::string_view(v.GetString(), v.GetStringLength())))
        return "a string in the JSON holds a lone UTF-16 surrogate";
    return std::nullopt;
}

// Either problem anywhere in `v` makes the whole text invalid. Values reaching here are depth-checked.
std::optional<std::string> unrepresentable(const Value& v) {
    if (auto why = scalar_problem(v)) return why;
    if (v.IsObject()) {
        for (const auto& m : v.GetObject()) {
            if (auto why = unrepresentable(m.name)) return why;
            if (auto why = unrepresentable(m.value)) return why;
        }
    } else if (v.IsArray()) {
        for (const auto& e : v.GetArray())
            if (auto why = unrepresentable(e)) return why;
    }
    return std::nullopt;
}

bool is_single_key_object(const Value& v) {
    return v.IsObject() && v.MemberCount() == 1;
}

bool all_single_key_objects(const Value& array) {
    for (const auto& e : array.GetArray())
        if (!is_single_key_object(e)) return false;
    return true;
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// write_plain's walk: emits what to_plain would build, checking each key and scalar before it is written
// (the Writer would otherwise stop at an infinite number, or copy bytes that are not UTF-8).
std::optional<std::string> emit_plain(const Value& v, Writer& out) {
    const auto key = [&out](const Value& name) -> std::optional<std::string> {
        if (auto why = scalar_problem(name)) return why;
        out.Key(name.GetString(), name.GetStringLength());
        return std::nullopt;
    };
    if (v.IsArray() && all_single_key_objects(v)) { // `[]` too: EEBUS writes an empty object that way
        out.StartObject();
        for (const auto& e : v.GetArray()) {
            const auto& m = *e.MemberBegin();
            if (auto why = key(m.name)) return why;
            if (auto why = emit_plain(m.value, out)) return why;
        }
        out.EndObject();
    } else if (v.IsArray()) {
        out.StartArray();
        for (const auto& e : v.GetArray())
            if (auto why = emit_plain(e, out)) return why;
        out.EndArray();
    } else if (v.IsObject()) {
        out.StartObject();
        for (const auto& m : v.GetObject()) {
            if (auto why = key(m.name)) return why;
            if (auto why = emit_plain(m.value, out)) return why;
        }
        out.EndObject();
    } else {
        if (auto why = scalar_problem(v)) return why;
        v.Accept(out); // a scalar: written exactly as the copy to_plain makes would be
    }
    return std::nullopt;
}

Value copy_scalar(const Value& v, Allocator& alloc) {
    return Value(v, alloc);
}

} // namespace

std::optional<CodecError> parse_unchecked(std::string_view text, rapidjson::Document& out) {
    while (!text.empty() && text.back() == '\0')
        text.remove_suffix(1);
    if (text.empty()) return CodecError{"empty JSON text"};
    const TextScan scan = scan_text(text);
    if (scan.too_deep_at)
        return CodecError{"JSON nested deeper than " + std::to_string(max_depth) + " levels (at offset " +
                          std::to_string(*scan.too_deep_at) + ")"};
    constexpr unsigned flags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
    if (scan.full_precision_unsafe)
        out.Parse<flags>(text.data(), text.size());
    else
        out.Parse<flags | rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
    if (out.HasParseError())
        return CodecError{std::string("invalid JSON at offset ") + std::to_string(out.GetErrorOffset()) +
                          ": " + rapidjson::GetParseError_En(out.GetParseError())};
    return std::nullopt;
}

std::optional<CodecError> parse(std::string_view text, rapidjson::Document& out) {
    if (auto err = parse_unchecked(text, out)) return err;
    if (auto why = unrepresentable(out)) return CodecError{*why};
    return std::nullopt;
}

std::optional<CodecError> value_problem(const Value& value) {
    if (auto why = scalar_problem(value)) return CodecError{*why};
    return std::nullopt;
}

bool is_object_like(const Value& value) {
    return value.IsObject() || (value.IsArray() && all_single_key_objects(value));
}

std::variant<std::string, CodecError> write_plain(const Value& eebus) {
    rapidjson::StringBuffer buffer;
    Writer writer(buffer);
    if (auto why = emit_plain(eebus, writer)) return CodecError{*why};
    return std::string(buffer.GetString(), buffer.GetSize());
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
    if (auto err = parse_unchecked(eebus, in)) return *err;
    // write_plain checks every value it writes, in parse()'s order, and it writes all of `in`.
    return write_plain(in);
}

} // namespace ship::json
