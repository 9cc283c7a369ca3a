#include "ship/frame.hpp"

namespace ship {

bool is_valid_utf8(std::string_view text) {
    // RFC 3629: shortest form only, no surrogates, nothing above U+10FFFF.
    std::size_t i = 0;
    const std::size_t n = text.size();
    while (i < n) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len = 0;
        std::uint32_t cp = 0;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(text[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        static constexpr std::uint32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

std::variant<Frame, FrameError> parse_frame(std::span<const std::uint8_t> message) {
    if (message.size() < 2) return FrameError{"message shorter than 2 bytes"};
    const auto type = message[0];
    if (type > static_cast<std::uint8_t>(MessageType::end))
        return FrameError{"unknown SHIP message type byte " + std::to_string(type)};
    std::string_view text(reinterpret_cast<const char*>(message.data()) + 1, message.size() - 1);
    if (type == static_cast<std::uint8_t>(MessageType::init))
        return Frame{MessageType::init, std::string(text)};
    while (!text.empty() && text.back() == '\0')
        text.remove_suffix(1);
    if (text.empty()) return FrameError{"message has a type byte but no value"};
    if (!is_valid_utf8(text)) return FrameError{"message value is not valid UTF-8"};
    return Frame{static_cast<MessageType>(type), std::string(text)};
}

Bytes cmi_message() {
    return Bytes{0x00, 0x00};
}

bool is_valid_cmi(std::span<const std::uint8_t> message) {
    return message.size() == 2 && message[0] == 0x00 && message[1] == 0x00;
}

Bytes make_frame(MessageType type, std::string_view json) {
    Bytes out;
    out.reserve(json.size() + 1);
    out.push_back(static_cast<std::uint8_t>(type));
    out.insert(out.end(), json.begin(), json.end());
    return out;
}

} // namespace ship
