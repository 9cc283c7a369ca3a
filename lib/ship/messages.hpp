// The SHIP messages (TS 1.0.1 §13.4) as typed values: encode gives the exact wire bytes, decode turns a
// frame into one message or says precisely what is wrong with it. Unknown members are ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ship/frame.hpp"

namespace ship::msg {

enum class HelloPhase { pending, ready, aborted };
struct ConnectionHello {
    HelloPhase phase = HelloPhase::ready;
    std::optional<std::uint64_t> waiting; // ms
    std::optional<bool> prolongation_request;
    bool operator==(const ConnectionHello&) const = default;
};

enum class HandshakeType { announce_max, select };
struct ProtocolVersion {
    std::uint64_t major = 1;
    std::uint64_t minor = 0;
    auto operator<=>(const ProtocolVersion&) const = default;
};
inline constexpr std::string_view format_json_utf8 = "JSON-UTF8";
struct MessageProtocolHandshake {
    HandshakeType type = HandshakeType::announce_max;
    ProtocolVersion version;
    std::vector<std::string> formats{std::string(format_json_utf8)};
    bool operator==(const MessageProtocolHandshake&) const = default;
};

// Error numbers of messageProtocolHandshakeError.
enum class HandshakeError : std::uint8_t { timeout = 1, unexpected_message = 2, selection_mismatch = 3 };
struct MessageProtocolHandshakeError {
    std::uint64_t error = 0;
    bool operator==(const MessageProtocolHandshakeError&) const = default;
};

enum class PinState { required, optional, pin_ok, none };
enum class PinInputPermission { busy, ok };
struct ConnectionPinState {
    PinState pin_state = PinState::none;
    std::optional<PinInputPermission> input_permission;
    bool operator==(const ConnectionPinState&) const = default;
};
struct ConnectionPinInput {
    std::string pin;
    bool operator==(const ConnectionPinInput&) const = default;
};
struct ConnectionPinError {
    std::uint64_t error = 0;
    bool operator==(const ConnectionPinError&) const = default;
};

struct AccessMethodsRequest {
    bool operator==(const AccessMethodsRequest&) const = default;
};
struct AccessMethods {
    std::string id;
    bool dns_sd_mdns = false;
    std::optional<std::string> dns_uri;
    bool operator==(const AccessMethods&) const = default;
};

// A SHIP data message; payload and extension are plain JSON text.
struct Data {
    std::string protocol_id;
    std::string payload;
    std::optional<std::string> extension;
    bool operator==(const Data&) const = default;
};
inline constexpr std::string_view protocol_id_spine = "ee1.0";

enum class ClosePhase { announce, confirm };
struct ConnectionClose {
    ClosePhase phase = ClosePhase::announce;
    std::optional<std::uint64_t> max_time; // ms
    std::optional<std::string> reason;     // spec: unspecific | removedConnection; any text is accepted
    bool operator==(const ConnectionClose&) const = default;
};
inline constexpr std::string_view close_reason_unspecific = "unspecific";
inline constexpr std::string_view close_reason_removed_connection = "removedConnection";

using Message = std::variant<ConnectionHello, MessageProtocolHandshake, MessageProtocolHandshakeError,
                             ConnectionPinState, ConnectionPinInput, ConnectionPinError, AccessMethodsRequest,
                             AccessMethods, Data, ConnectionClose>;

// The root tag of a message, e.g. "connectionHello".
std::string_view name(const Message& message);

struct DecodeError {
    std::string reason;
};
// The frame's type byte must match the message: connectionClose in `end`, data in `data`, the rest in
// `control`. Accepts the legacy `{"error":N}` and the flat `"formats":["JSON-UTF8"]`.
std::variant<Message, DecodeError> decode(const Frame& frame);

// Wire bytes (type byte + compact EEBUS JSON) of a control or end message.
Bytes encode(const ConnectionHello& m);
Bytes encode(const MessageProtocolHandshake& m);
Bytes encode(const MessageProtocolHandshakeError& m);
Bytes encode(const ConnectionPinState& m);
Bytes encode(const ConnectionPinInput& m);
Bytes encode(const ConnectionPinError& m);
Bytes encode(const AccessMethodsRequest& m);
Bytes encode(const AccessMethods& m);
Bytes encode(const ConnectionClose& m);

struct EncodeError {
    std::string reason;
};
// A data message around a plain JSON object payload (e.g. {"datagram":{...}}), protocolId ee1.0.
std::variant<Bytes, EncodeError> encode_data(std::string_view plain_payload);
// encode_data for what an application sends: the payload must also be a SPINE message,
// {"datagram":{"header":{...},"payload":{...}}} and nothing else (a peer's SPINE stack would drop anything
// else, or worse). Checked and converted in one parse; the error says what is wrong.
std::variant<Bytes, EncodeError> encode_spine_datagram(std::string_view plain_datagram);

} // namespace ship::msg
