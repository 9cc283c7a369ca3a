// cut_utf8: at most `limit` bytes of a UTF-8 text, never ending inside a multi-byte sequence.
// max_close_reason_bytes: the longest reason a WebSocket close frame can carry.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ship::util {

// 125-byte control frame payload minus the 2-byte code.
inline constexpr std::size_t max_close_reason_bytes = 123;

// Backs up over continuation bytes (10xxxxxx) so that a cut text stays valid UTF-8 when the input was:
// a close reason or a log line must not carry half a character.
inline std::string cut_utf8(std::string_view s, std::size_t limit) {
    if (s.size() <= limit) return std::string(s);
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80)
        --end;
    return std::string(s.substr(0, end));
}

} // namespace ship::util
