// What every fuzz target shares: a reader that turns the fuzz input into choices and never runs past its end,
// and FUZZ_REQUIRE, an invariant check that aborts (so libFuzzer saves the input) whatever NDEBUG says.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace ship::fuzz {

[[noreturn]] inline void invariant_broken(const char* file, int line, const char* condition,
                                          const std::string& detail) {
    std::fprintf(stderr, "\n%s:%d: fuzz invariant broken: %s\n  %s\n", file, line, condition, detail.c_str());
    std::fflush(stderr);
    std::abort();
}

// Text for a report: printable ASCII kept, everything else as \xNN, cut to `limit` bytes of input.
inline std::string printable(std::string_view text, std::size_t limit = 400) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out.push_back(static_cast<char>(c));
        } else {
            out += "\\x";
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 0x0F]);
        }
    }
    if (text.size() > limit) out += "...";
    return out;
}

// Consumes the fuzz input front to back. Past the end every read yields zero or empty, so a harness can
// read freely and stop when `empty()` says so.
class ByteReader {
public:
    ByteReader(const std::uint8_t* data, std::size_t size)
        : data_(data)
        , size_(size) {}

    bool empty() const { return pos_ >= size_; }
    std::size_t left() const { return size_ - pos_; }

    std::uint8_t byte() { return empty() ? 0 : data_[pos_++]; }
    bool flag() { return (byte() & 1) != 0; }
    // 0 .. n-1 (n > 0).
    std::size_t pick(std::size_t n) { return byte() % n; }

    // Big-endian unsigned of `bytes` bytes (at most 8).
    std::uint64_t number(unsigned bytes) {
        std::uint64_t v = 0;
        for (unsigned i = 0; i < bytes; ++i)
            v = (v << 8) | byte();
        return v;
    }

    // Up to `n` bytes (fewer at the end of the input).
    std::string_view bytes(std::size_t n) {
        const std::size_t take = n < left() ? n : left();
        const std::string_view out(reinterpret_cast<const char*>(data_ + pos_), take);
        pos_ += take;
        return out;
    }
    // A length byte, then that many bytes.
    std::string_view sized() { return bytes(byte()); }

private:
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t pos_ = 0;
};

} // namespace ship::fuzz

#define FUZZ_REQUIRE(condition, detail)                                                                      \
    do {                                                                                                     \
        if (!(condition)) ::ship::fuzz::invariant_broken(__FILE__, __LINE__, #condition, (detail));          \
    } while (false)
