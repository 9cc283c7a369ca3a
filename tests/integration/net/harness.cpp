#include "harness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <spdlog/cfg/env.h>

#include "tls/pem.hpp"

namespace ship::net::test {

namespace {
// SPDLOG_LEVEL=debug (or trace, which also shows lws's info lines) when a test needs looking into.
const bool log_levels_loaded = [] {
    spdlog::cfg::load_env_levels();
    return true;
}();
} // namespace

// ---- StrandThread ----

StrandThread::StrandThread(StrandOptions options)
    : strand_(std::make_unique<Strand>(stop_.get_token(), options)) {
    thread_ = std::thread([this] { strand_->run(); });
    // Until run() has started the strand is parked and counts as "on the strand" from every thread: a
    // test's first check must see it running.
    call([] {});
}

StrandThread::~StrandThread() {
    stop_and_join();
    // Parked strand: safe from this thread (Strand contract 5). Newest first, like locals: what was kept
    // later may use what was kept before it (a connection its timer service).
    while (!kept_.empty())
        kept_.pop_back();
    strand_.reset();
}

void StrandThread::stop_and_join() {
    if (!thread_.joinable()) return;
    stop_.request_stop();
    thread_.join();
}

Recorder& StrandThread::recorder() {
    std::lock_guard lock(recorders_mutex_);
    recorders_.push_back(std::make_shared<Recorder>());
    return *recorders_.back();
}

// ---- Recorder ----

void Recorder::on_open(Link&) {
    std::lock_guard lock(mutex_);
    ++opens_;
    changed_.notify_all();
}

void Recorder::on_message(Link&, std::vector<std::uint8_t> message) {
    std::lock_guard lock(mutex_);
    messages_.push_back(std::move(message));
    changed_.notify_all();
}

void Recorder::on_closed(Link&, const CloseInfo& info) {
    std::lock_guard lock(mutex_);
    ++closes_;
    closed_ = info;
    changed_.notify_all();
}

template <typename P>
bool Recorder::wait(P predicate, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, predicate);
}

bool Recorder::wait_open(std::chrono::milliseconds timeout) {
    return wait([this] { return opens_ > 0 || closes_ > 0; }, timeout) && opened();
}

bool Recorder::wait_messages(std::size_t count, std::chrono::milliseconds timeout) {
    return wait([this, count] { return messages_.size() >= count || closes_ > 0; }, timeout) &&
           messages().size() >= count;
}

std::optional<CloseInfo> Recorder::wait_closed(std::chrono::milliseconds timeout) {
    wait([this] { return closes_ > 0; }, timeout);
    return closed();
}

bool Recorder::opened() {
    std::lock_guard lock(mutex_);
    return opens_ > 0;
}

std::optional<CloseInfo> Recorder::closed() {
    std::lock_guard lock(mutex_);
    return closed_;
}

std::vector<std::vector<std::uint8_t>> Recorder::messages() {
    std::lock_guard lock(mutex_);
    return messages_;
}

int Recorder::open_count() {
    std::lock_guard lock(mutex_);
    return opens_;
}

int Recorder::closed_count() {
    std::lock_guard lock(mutex_);
    return closes_;
}

// ---- Acceptor ----

Acceptor::Acceptor(Strand& strand, const tls::Identity& identity, LinkSettings settings, bool tls12_only,
                   std::string listen_address) {
    ServerConfig config;
    config.certificate_pem = identity.certificate_pem;
    config.private_key_pem = identity.private_key_pem;
    config.listen_address = std::move(listen_address);
    config.port = 0;
    config.tls12_only = tls12_only;
    config.link = settings;
    config.admit = [this](const std::shared_ptr<Link>& link) {
        if (refuse)
            if (auto refusal = refuse(link)) return *refusal;
        auto recorder = std::make_shared<Recorder>();
        std::lock_guard lock(mutex_);
        accepted_.push_back({link, recorder});
        changed_.notify_all();
        return Admission::accept(*recorder);
    };
    config.on_handshake_failed = [this](const HandshakeFailure& failure) {
        std::lock_guard lock(mutex_);
        failures_.push_back(failure);
        changed_.notify_all();
    };
    server = std::make_unique<Server>(strand, std::move(config));
    port_ = server->port();
}

std::optional<Acceptor::Accepted> Acceptor::wait_accepted(std::size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, timeout, [&] { return accepted_.size() > n; })) return std::nullopt;
    return Accepted{accepted_[n].link.get(), accepted_[n].recorder.get()};
}

std::size_t Acceptor::accepted_count() {
    std::lock_guard lock(mutex_);
    return accepted_.size();
}

std::vector<HandshakeFailure> Acceptor::failures() {
    std::lock_guard lock(mutex_);
    return failures_;
}

bool Acceptor::wait_failures(std::size_t count, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return failures_.size() >= count; });
}

// ---- helpers ----

tls::Identity make_identity(const std::string& name) {
    return tls::generate_identity({name, "shipd tests", {}, {}});
}

ClientConfig client_config(const tls::Identity& identity) {
    ClientConfig config;
    config.certificate_pem = identity.certificate_pem;
    config.private_key_pem = identity.private_key_pem;
    return config;
}

std::vector<std::uint8_t> bytes_of(const std::string& text) {
    return {text.begin(), text.end()};
}

std::vector<std::uint8_t> pattern(std::size_t size, std::uint32_t seed) {
    std::vector<std::uint8_t> out(size);
    std::minstd_rand random(seed + 1);
    for (auto& b : out)
        b = static_cast<std::uint8_t>(random());
    return out;
}

namespace {

int connect_tcp(const std::string& host, std::uint16_t port) {
    sockaddr_storage storage{};
    socklen_t size = 0;
    int family = AF_INET;
    if (host.find(':') != std::string::npos) {
        family = AF_INET6;
        auto& a = reinterpret_cast<sockaddr_in6&>(storage);
        a.sin6_family = AF_INET6;
        a.sin6_port = htons(port);
        if (inet_pton(AF_INET6, host.c_str(), &a.sin6_addr) != 1)
            throw std::runtime_error("bad address " + host);
        size = sizeof(a);
    } else {
        auto& a = reinterpret_cast<sockaddr_in&>(storage);
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1)
            throw std::runtime_error("bad address " + host);
        size = sizeof(a);
    }
    const int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket failed");
    if (::connect(fd, reinterpret_cast<sockaddr*>(&storage), size) != 0) {
        ::close(fd);
        throw std::runtime_error("connect to " + host + ":" + std::to_string(port) + " failed");
    }
    return fd;
}

bool wait_readable(int fd, std::chrono::milliseconds timeout) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) > 0;
}

} // namespace

// ---- RawTlsClient ----

RawTlsClient::RawTlsClient(const std::string& host, std::uint16_t port, const tls::Identity& identity) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    ctx_ = ctx;
    auto cert = tls::parse_certificate_pem(identity.certificate_pem);
    auto key = tls::parse_private_key_pem(identity.private_key_pem);
    if (!ctx || !cert || !key || SSL_CTX_use_certificate(ctx, cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, key.get()) != 1)
        throw std::runtime_error("raw client: bad identity");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    fd_ = connect_tcp(host, port);
    SSL* ssl = SSL_new(ctx);
    ssl_ = ssl;
    SSL_set_fd(ssl, fd_);
    if (SSL_connect(ssl) != 1) {
        ERR_clear_error();
        throw std::runtime_error("raw client: TLS handshake failed");
    }
}

RawTlsClient::~RawTlsClient() {
    if (ssl_) SSL_free(static_cast<SSL*>(ssl_));
    if (ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
    if (fd_ >= 0) ::close(fd_);
}

int RawTlsClient::read_some(std::uint8_t* out, std::size_t size, std::chrono::milliseconds timeout) {
    auto* ssl = static_cast<SSL*>(ssl_);
    if (SSL_pending(ssl) == 0 && !wait_readable(fd_, timeout)) return -2; // timeout
    const int n = SSL_read(ssl, out, static_cast<int>(size));
    if (n <= 0) {
        const int error = SSL_get_error(ssl, n);
        ERR_clear_error();
        if (error == SSL_ERROR_WANT_READ) return 0;
        return -1; // EOF or error
    }
    return n;
}

bool RawTlsClient::read_exact(std::uint8_t* out, std::size_t size, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (pending_.size() < size) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        std::uint8_t buffer[16384];
        const int n = read_some(buffer, sizeof(buffer), left);
        if (n < 0) return false;
        pending_.insert(pending_.end(), buffer, buffer + n);
    }
    std::memcpy(out, pending_.data(), size);
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(size));
    return true;
}

std::string RawTlsClient::upgrade(const std::string& path, const std::string& subprotocol) {
    std::string request = "GET " + path +
                          " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    if (!subprotocol.empty()) request += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n";
    request += "\r\n";
    SSL_write(static_cast<SSL*>(ssl_), request.data(), static_cast<int>(request.size()));
    std::string head;
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (head.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < until) {
        std::uint8_t c;
        if (!read_exact(&c, 1, deadline)) break;
        head += static_cast<char>(c);
    }
    return head;
}

void RawTlsClient::send_frame(int opcode, const std::vector<std::uint8_t>& payload, bool fin) {
    write_frame(opcode, payload.size(), payload, fin);
}

void RawTlsClient::send_partial_frame(int opcode, std::size_t announced,
                                      const std::vector<std::uint8_t>& prefix) {
    write_frame(opcode, announced, prefix, true);
}

void RawTlsClient::write_frame(int opcode, std::size_t n, const std::vector<std::uint8_t>& payload,
                               bool fin) {
    std::vector<std::uint8_t> frame;
    frame.push_back(static_cast<std::uint8_t>((fin ? 0x80 : 0) | opcode));
    if (n < 126) {
        frame.push_back(static_cast<std::uint8_t>(0x80 | n));
    } else if (n < 65536) {
        frame.push_back(0x80 | 126);
        frame.push_back(static_cast<std::uint8_t>(n >> 8));
        frame.push_back(static_cast<std::uint8_t>(n));
    } else {
        frame.push_back(0x80 | 127);
        for (int shift = 56; shift >= 0; shift -= 8)
            frame.push_back(static_cast<std::uint8_t>(static_cast<std::uint64_t>(n) >> shift));
    }
    const std::uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    frame.insert(frame.end(), mask, mask + 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        frame.push_back(payload[i] ^ mask[i % 4]);
    SSL_write(static_cast<SSL*>(ssl_), frame.data(), static_cast<int>(frame.size()));
}

RawTlsClient::Frame RawTlsClient::read_frame(std::chrono::milliseconds timeout) {
    Frame frame;
    std::uint8_t head[2];
    if (!read_exact(head, 2, timeout)) return frame;
    std::uint64_t length = head[1] & 0x7f;
    if (length == 126) {
        std::uint8_t ext[2];
        if (!read_exact(ext, 2, timeout)) return frame;
        length = (ext[0] << 8) | ext[1];
    } else if (length == 127) {
        std::uint8_t ext[8];
        if (!read_exact(ext, 8, timeout)) return frame;
        length = 0;
        for (auto b : ext)
            length = (length << 8) | b;
    }
    frame.payload.resize(length);
    if (length && !read_exact(frame.payload.data(), length, timeout)) return frame;
    frame.opcode = head[0] & 0x0f;
    return frame;
}

bool RawTlsClient::wait_eof(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0) return false;
        std::uint8_t buffer[4096];
        const int n = read_some(buffer, sizeof(buffer), left);
        if (n == -1) return true;
        if (n == -2) return false;
    }
}

// ---- plain TCP, black hole ----

std::string plain_tcp_exchange(std::uint16_t port, const std::string& text,
                               std::chrono::milliseconds timeout) {
    const int fd = connect_tcp("127.0.0.1", port);
    (void)!::write(fd, text.data(), text.size());
    std::string received;
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !wait_readable(fd, left)) break;
        char buffer[4096];
        const auto n = ::read(fd, buffer, sizeof(buffer));
        if (n <= 0) break;
        received.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return received;
}

BlackHole::BlackHole() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd_, 8) != 0)
        throw std::runtime_error("black hole listener failed");
    socklen_t size = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &size);
    port_ = ntohs(a.sin_port);
}

BlackHole::~BlackHole() {
    if (fd_ >= 0) ::close(fd_);
}

} // namespace ship::net::test
