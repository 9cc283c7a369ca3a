#include "scripted_peer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls/pem.hpp"

namespace ship::test::hostile {

namespace {

SSL* ssl_of(void* p) {
    return static_cast<SSL*>(p);
}

} // namespace

int ms_until(Clock::time_point until) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

ScriptedPeer::ScriptedPeer(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        if (fd_ >= 0) ::close(fd_);
        throw std::runtime_error("scripted peer: cannot connect to 127.0.0.1:" + std::to_string(port));
    }
    // A write that shipd does not drain (it stopped reading an oversized frame) must fail, not hang the test.
    timeval send_timeout{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &send_timeout, sizeof send_timeout);
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::uint16_t ScriptedPeer::local_port() const {
    sockaddr_in addr{};
    socklen_t length = sizeof addr;
    if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length) != 0) return 0;
    return ntohs(addr.sin_port);
}

ScriptedPeer::~ScriptedPeer() {
    if (ssl_) SSL_free(ssl_of(ssl_));
    if (ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
    if (fd_ >= 0) ::close(fd_);
}

bool ScriptedPeer::start_tls(const tls::Identity& identity) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    ctx_ = ctx;
    auto cert = tls::parse_certificate_pem(identity.certificate_pem);
    auto key = tls::parse_private_key_pem(identity.private_key_pem);
    if (!ctx || !cert || !key || SSL_CTX_use_certificate(ctx, cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key.get()) != 1)
        throw std::runtime_error("scripted peer: unusable identity");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr); // shipd's SKI is not what these cases are about
    SSL* ssl = SSL_new(ctx);
    ssl_ = ssl;
    SSL_set_fd(ssl, fd_);
    const bool ok = SSL_connect(ssl) == 1;
    ERR_clear_error();
    gone_ = !ok;
    return ok;
}

bool ScriptedPeer::write_raw(std::string_view bytes) {
    while (!bytes.empty() && !gone_) {
        ssize_t n;
        if (ssl_) {
            n = SSL_write(ssl_of(ssl_), bytes.data(), static_cast<int>(bytes.size()));
            if (n <= 0) ERR_clear_error();
        } else {
            n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        }
        if (n <= 0)
            gone_ = true;
        else
            bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return !gone_;
}

std::string ScriptedPeer::upgrade_request(const std::string& path) {
    return "GET " + path +
           " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Protocol: ship\r\n\r\n";
}

std::string ScriptedPeer::upgrade(const std::string& path) {
    if (!write_raw(upgrade_request(path))) return {};
    std::string head;
    const auto until = Clock::now() + 10s;
    while (head.find("\r\n\r\n") == std::string::npos) {
        std::uint8_t c;
        if (!read_exact(&c, 1, until)) break;
        head += static_cast<char>(c);
    }
    return head;
}

int ScriptedPeer::http_status(const std::string& head) {
    // lws answers a refused upgrade as HTTP/1.0.
    if ((head.rfind("HTTP/1.1 ", 0) != 0 && head.rfind("HTTP/1.0 ", 0) != 0) || head.size() < 12) return 0;
    return std::atoi(head.c_str() + 9);
}

bool ScriptedPeer::send_frame_header(int opcode, std::uint64_t n, bool fin) {
    std::string frame;
    frame.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
    if (n < 126) {
        frame.push_back(static_cast<char>(0x80 | n));
    } else if (n < 65536) {
        frame.push_back(static_cast<char>(0x80 | 126));
        frame.push_back(static_cast<char>(n >> 8));
        frame.push_back(static_cast<char>(n));
    } else {
        frame.push_back(static_cast<char>(0x80 | 127));
        for (int shift = 56; shift >= 0; shift -= 8)
            frame.push_back(static_cast<char>(n >> shift));
    }
    frame.append("\x12\x34\x56\x78", 4); // clients must mask (RFC 6455 §5.3); the key may be constant
    return write_raw(frame);
}

bool ScriptedPeer::send_masked_payload(const std::vector<std::uint8_t>& payload, std::uint64_t offset) {
    static constexpr std::uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    std::string masked(payload.size(), '\0');
    for (std::size_t i = 0; i < payload.size(); ++i)
        masked[i] = static_cast<char>(payload[i] ^ mask[(offset + i) % 4]);
    return write_raw(masked);
}

bool ScriptedPeer::send_frame(int opcode, const std::vector<std::uint8_t>& payload, bool fin) {
    return send_frame_header(opcode, payload.size(), fin) && send_masked_payload(payload);
}

int ScriptedPeer::read_some(std::uint8_t* out, std::size_t size, Clock::time_point until) {
    for (;;) {
        if (eof_) return -1;
        if (!ssl_ || SSL_pending(ssl_of(ssl_)) == 0) {
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, ms_until(until)) <= 0) return -2; // deadline
        }
        if (!ssl_) {
            const ssize_t n = ::recv(fd_, out, size, 0);
            if (n > 0) return static_cast<int>(n);
            eof_ = true;
            return -1;
        }
        const int n = SSL_read(ssl_of(ssl_), out, static_cast<int>(size));
        if (n > 0) return n;
        const int error = SSL_get_error(ssl_of(ssl_), n);
        ERR_clear_error();
        if (error != SSL_ERROR_WANT_READ) { // EOF, reset or TLS alert
            eof_ = true;
            return -1;
        }
        if (ms_until(until) == 0) return -2;
    }
}

bool ScriptedPeer::read_exact(std::uint8_t* out, std::size_t size, Clock::time_point until) {
    while (pending_.size() < size) {
        std::uint8_t buffer[16384];
        const int n = read_some(buffer, sizeof buffer, until);
        if (n < 0) return false;
        pending_.insert(pending_.end(), buffer, buffer + n);
    }
    std::memcpy(out, pending_.data(), size);
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(size));
    return true;
}

WsFrame ScriptedPeer::read_frame(Clock::duration timeout) {
    const auto until = Clock::now() + timeout;
    WsFrame frame;
    std::uint8_t head[2];
    if (!read_exact(head, 2, until)) return frame;
    std::uint64_t length = head[1] & 0x7f;
    if (length >= 126) {
        std::uint8_t ext[8];
        const std::size_t size = length == 126 ? 2 : 8;
        if (!read_exact(ext, size, until)) return frame;
        length = 0;
        for (std::size_t i = 0; i < size; ++i)
            length = (length << 8) | ext[i];
    }
    frame.payload.resize(length);
    if (length && !read_exact(frame.payload.data(), length, until)) return frame;
    frame.opcode = head[0] & 0x0f;
    return frame;
}

std::optional<Bytes> ScriptedPeer::read_message(Clock::duration timeout) {
    const auto until = Clock::now() + timeout;
    for (;;) {
        auto frame = read_frame(until - Clock::now());
        if (frame.opcode == opcode_binary) return std::move(frame.payload);
        if (frame.opcode == opcode_ping) {
            send_frame(0xA, frame.payload);
            continue;
        }
        if (frame.opcode == opcode_close) {
            // Put it back for wait_end(): a close is an ending, not a message.
            std::vector<std::uint8_t> again = {0x88, static_cast<std::uint8_t>(frame.payload.size())};
            again.insert(again.end(), frame.payload.begin(), frame.payload.end());
            pending_.insert(pending_.begin(), again.begin(), again.end());
        }
        return std::nullopt;
    }
}

Ending ScriptedPeer::wait_end(Clock::duration timeout) {
    const auto start = Clock::now();
    const auto until = start + timeout;
    Ending end;
    for (;;) {
        auto frame = read_frame(until - Clock::now());
        if (frame.opcode == opcode_close) {
            end.ended = true;
            end.after = Clock::now() - start;
            if (frame.payload.size() >= 2) {
                end.code = static_cast<std::uint16_t>((frame.payload[0] << 8) | frame.payload[1]);
                end.reason.assign(frame.payload.begin() + 2, frame.payload.end());
            }
            // Answer the close as RFC 6455 asks, then read to EOF: once shipd has closed its socket it has
            // also dropped the connection, so the next case finds its handshake slot free.
            frame.payload.resize(std::min<std::size_t>(frame.payload.size(), 2));
            send_frame(opcode_close, frame.payload);
            while (read_frame(until - Clock::now()).opcode >= 0) {
            }
            return end;
        }
        if (frame.opcode == opcode_binary) {
            end.messages.push_back(std::move(frame.payload));
            continue;
        }
        if (frame.opcode == opcode_ping) {
            send_frame(0xA, frame.payload);
            continue;
        }
        if (frame.opcode >= 0) continue; // pong, continuation: not what this peer waits for
        end.ended = eof_;                // else the deadline passed
        break;
    }
    end.after = Clock::now() - start;
    return end;
}

std::optional<msg::Message> ScriptedPeer::read_ship(Clock::duration timeout) {
    auto message = read_message(timeout);
    if (!message) return std::nullopt;
    auto frame = parse_frame(*message);
    if (!std::holds_alternative<Frame>(frame)) return std::nullopt;
    auto decoded = msg::decode(std::get<Frame>(frame));
    if (!std::holds_alternative<msg::Message>(decoded)) return std::nullopt;
    return std::get<msg::Message>(decoded);
}

bool ScriptedPeer::exchange_cmi(Clock::duration timeout) {
    if (!send_ship(cmi_message())) return false;
    auto answer = read_message(timeout);
    return answer && is_valid_cmi(*answer);
}

bool ScriptedPeer::hello_ready(Clock::duration timeout) {
    if (!send_ship(msg::encode(msg::ConnectionHello{msg::HelloPhase::ready, 60000, std::nullopt})))
        return false;
    auto hello = read_ship(timeout);
    const auto* h = hello ? std::get_if<msg::ConnectionHello>(&*hello) : nullptr;
    return h && h->phase == msg::HelloPhase::ready;
}

bool ScriptedPeer::finish_handshake(Clock::duration timeout) {
    const auto until = Clock::now() + timeout;
    msg::MessageProtocolHandshake announce; // announceMax 1.0 JSON-UTF8
    if (!send_ship(msg::encode(announce))) return false;
    auto select = read_ship(until - Clock::now());
    const auto* s = select ? std::get_if<msg::MessageProtocolHandshake>(&*select) : nullptr;
    if (!s || s->type != msg::HandshakeType::select) return false;
    if (!send_ship(msg::encode(*s))) return false;
    if (!send_ship(msg::encode(msg::ConnectionPinState{msg::PinState::none, std::nullopt}))) return false;
    bool pin = false, request = false;
    while (!(pin && request)) {
        auto m = read_ship(until - Clock::now());
        if (!m) return false;
        if (std::holds_alternative<msg::ConnectionPinState>(*m)) pin = true;
        if (std::holds_alternative<msg::AccessMethodsRequest>(*m)) request = true;
    }
    return send_ship(msg::encode(msg::AccessMethods{"hostile-peer", false, std::nullopt}));
}

} // namespace ship::test::hostile
