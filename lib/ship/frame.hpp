// SHIP framing (TS 1.0.1 §13.4.2): one type byte, then UTF-8 JSON; the CMI is exactly `00 00`.
// Splits a received WebSocket message into its type and JSON text, or says precisely why it cannot.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ship {

enum class MessageType : std::uint8_t { init = 0x00, control = 0x01, data = 0x02, end = 0x03 };

using Bytes = std::vector<std::uint8_t>;

// A decoded frame: its type and the JSON text after the type byte (trailing NUL bytes removed: a real
// device appends one). For `init` the text is the raw CMI head byte(s).
struct Frame {
    MessageType type;
    std::string payload;
};

struct FrameError {
    std::string reason;
};

std::variant<Frame, FrameError> parse_frame(std::span<const std::uint8_t> message);

// The connection-mode-initialisation message every SHIP node sends first.
Bytes cmi_message();
bool is_valid_cmi(std::span<const std::uint8_t> message);

// Type byte + text, as sent on the wire.
Bytes make_frame(MessageType type, std::string_view json);

bool is_valid_utf8(std::string_view text);

} // namespace ship
