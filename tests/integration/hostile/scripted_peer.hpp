// A SHIP peer that follows a script instead of the protocol: plain TCP, TLS with its own P-256 certificate,
// an HTTP upgrade and WebSocket frames it writes byte by byte, so it can send what a real library refuses to.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ship/frame.hpp"
#include "ship/messages.hpp"
#include "tls/identity.hpp"

namespace ship::test::hostile {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// RFC 6455 opcodes.
inline constexpr int opcode_binary = 0x2;
inline constexpr int opcode_close = 0x8;
inline constexpr int opcode_ping = 0x9;

struct WsFrame {
    int opcode = -1; // -1: nothing arrived before the deadline, or the connection ended
    std::vector<std::uint8_t> payload;
};

// How shipd ended the connection, as the peer saw it.
struct Ending {
    bool ended = false;                // EOF or a close frame before the deadline
    std::optional<std::uint16_t> code; // the WebSocket close code, if a close frame came
    std::string reason;
    std::vector<Bytes> messages; // binary messages that arrived before the end
    Clock::duration after{};     // from the call to the end
};

// Test thread only; blocking I/O with deadlines. Hand-written on purpose: lws and every other WebSocket
// library refuse to produce the malformed frames, absurd lengths and stalls this peer exists to send.
class ScriptedPeer {
public:
    explicit ScriptedPeer(std::uint16_t port); // TCP connected to 127.0.0.1:port, nothing sent
    ~ScriptedPeer();
    ScriptedPeer(const ScriptedPeer&) = delete;
    ScriptedPeer& operator=(const ScriptedPeer&) = delete;

    // TLS client handshake presenting `identity`; false if shipd refused it.
    bool start_tls(const tls::Identity& identity);
    // Writes bytes as they are (through TLS once started). False once the connection is gone or a write
    // stalls beyond the send timeout (shipd stopped reading).
    bool write_raw(std::string_view bytes);
    static std::string upgrade_request(const std::string& path = "/ship/");
    // Sends the upgrade request; returns the response head ("" if none came).
    std::string upgrade(const std::string& path = "/ship/");
    static int http_status(const std::string& head); // 0 if not an HTTP status line

    // A masked frame with the length field saying `announced` and `payload` after it.
    bool send_frame(int opcode, const std::vector<std::uint8_t>& payload, bool fin = true);
    bool send_frame_header(int opcode, std::uint64_t announced, bool fin = true);
    bool send_masked_payload(const std::vector<std::uint8_t>& payload, std::uint64_t offset = 0);
    bool send_ship(const Bytes& message) { return send_frame(opcode_binary, message); }

    WsFrame read_frame(Clock::duration timeout);
    // The next binary message (pings answered, nothing else skipped); nullopt at the end or deadline.
    std::optional<Bytes> read_message(Clock::duration timeout);
    // Reads until shipd closes (close frame and/or EOF) or the deadline. A close frame is answered and the
    // connection read to its end; `after` is when the close frame came.
    Ending wait_end(Clock::duration timeout);

    // SHIP steps as a conforming client does them, each checked against shipd's answer.
    bool exchange_cmi(Clock::duration timeout);
    bool hello_ready(Clock::duration timeout);      // sends ready, reads shipd's hello
    bool finish_handshake(Clock::duration timeout); // protocol handshake, PIN, access methods
    std::optional<msg::Message> read_ship(Clock::duration timeout);
    // The connection ended (EOF, reset, TLS alert) as seen by a read or write.
    bool gone() const { return eof_ || gone_; }
    // Our end of the TCP connection: the source port shipd sees.
    std::uint16_t local_port() const;

private:
    int read_some(std::uint8_t* out, std::size_t size, Clock::time_point until);
    bool read_exact(std::uint8_t* out, std::size_t size, Clock::time_point until);

    int fd_ = -1;
    void* ctx_ = nullptr; // SSL_CTX
    void* ssl_ = nullptr; // SSL
    bool gone_ = false;   // a write failed
    bool eof_ = false;    // a read saw the end of the connection
    std::vector<std::uint8_t> pending_;
};

// Milliseconds left until `until`, at least 0.
int ms_until(Clock::time_point until);

} // namespace ship::test::hostile
