// Test harness for lib/net: a strand on its own thread that the test thread drives with call(), link
// handlers that record what arrives (thread-safe, waits with deadlines), and raw misbehaving peers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "net/client.hpp"
#include "net/link.hpp"
#include "net/server.hpp"
#include "net/strand.hpp"
#include "tls/identity.hpp"

namespace ship::net::test {

using namespace std::chrono_literals;
inline constexpr auto deadline = 10s;

class Recorder;

// The strand runs on a background thread; call() runs a function on it and returns its result.
class StrandThread {
public:
    explicit StrandThread(StrandOptions options = {});
    ~StrandThread(); // stops and joins if the test did not

    Strand& strand() { return *strand_; }
    std::stop_source& stop_source() { return stop_; }

    template <typename F>
    auto call(F&& fn) -> decltype(fn()) {
        using R = decltype(fn());
        auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(fn));
        auto result = task->get_future();
        if (!strand_->post([task] { (*task)(); })) throw std::runtime_error("strand is stopping");
        if (result.wait_for(deadline) != std::future_status::ready)
            throw std::runtime_error("strand did not run the call in time");
        return result.get();
    }

    // Objects owned by the harness die after the strand stopped (parked), whatever the test did: a failed
    // REQUIRE unwinding the test must not destroy strand objects from the test thread while it runs.
    template <typename T, typename... Args>
    T& make(Args&&... args) {
        return *call([&] {
            auto object = std::make_shared<T>(std::forward<Args>(args)...);
            kept_.push_back(object);
            return object.get();
        });
    }
    // Strand only. Kept objects live until the StrandThread goes, destroyed newest first.
    void keep(std::shared_ptr<void> object) { kept_.push_back(std::move(object)); }
    Recorder& recorder(); // any thread

    void stop_and_join();
    bool joined() const { return !thread_.joinable(); }

private:
    std::stop_source stop_;
    std::unique_ptr<Strand> strand_;
    std::thread thread_;
    std::vector<std::shared_ptr<void>> kept_;
    std::mutex recorders_mutex_;
    std::vector<std::shared_ptr<Recorder>> recorders_;
};

// Records one Link's events; its methods run on the strand, its queries on the test thread.
class Recorder : public LinkHandler {
public:
    void on_open(Link& link) override;
    void on_message(Link& link, std::vector<std::uint8_t> message) override;
    void on_closed(Link& link, const CloseInfo& info) override;

    bool wait_open(std::chrono::milliseconds timeout = deadline);
    bool wait_messages(std::size_t count, std::chrono::milliseconds timeout = deadline);
    std::optional<CloseInfo> wait_closed(std::chrono::milliseconds timeout = deadline);

    bool opened();
    std::optional<CloseInfo> closed();
    std::vector<std::vector<std::uint8_t>> messages();
    int open_count();
    int closed_count();

private:
    template <typename P>
    bool wait(P predicate, std::chrono::milliseconds timeout);

    std::mutex mutex_;
    std::condition_variable changed_;
    int opens_ = 0, closes_ = 0;
    std::vector<std::vector<std::uint8_t>> messages_;
    std::optional<CloseInfo> closed_;
};

// A server whose admission accepts everything (unless `refuse` says otherwise) and records each accepted
// Link with its own Recorder. Strand-only construction; queries are thread-safe.
class Acceptor {
public:
    // Raw views for the test thread; the Acceptor owns both (a test must never own a strand object).
    struct Accepted {
        Link* link = nullptr;
        Recorder* recorder = nullptr;
    };

    Acceptor(Strand& strand, const tls::Identity& identity, LinkSettings settings = {},
             bool tls12_only = false, std::string listen_address = "127.0.0.1");

    std::uint16_t port() const { return port_; }
    // The n-th accepted connection (0-based), waiting for it.
    std::optional<Accepted> wait_accepted(std::size_t n, std::chrono::milliseconds timeout = deadline);
    std::size_t accepted_count();
    std::vector<HandshakeFailure> failures();
    bool wait_failures(std::size_t count, std::chrono::milliseconds timeout = deadline);

    std::function<std::optional<Admission>(const std::shared_ptr<Link>&)> refuse; // strand
    std::unique_ptr<Server> server;

private:
    std::mutex mutex_;
    std::condition_variable changed_;
    struct Owned {
        std::shared_ptr<Link> link;
        std::shared_ptr<Recorder> recorder;
    };
    std::vector<Owned> accepted_;
    std::vector<HandshakeFailure> failures_;
    std::uint16_t port_ = 0;
};

tls::Identity make_identity(const std::string& name);
ClientConfig client_config(const tls::Identity& identity);
std::vector<std::uint8_t> bytes_of(const std::string& text);
std::vector<std::uint8_t> pattern(std::size_t size, std::uint32_t seed);

// A blocking TLS client that speaks just enough HTTP/WebSocket to misbehave on purpose (test thread only).
class RawTlsClient {
public:
    struct Frame {
        int opcode = -1; // -1: nothing arrived before the timeout or the connection ended
        std::vector<std::uint8_t> payload;
    };

    // Connects and completes TLS with this certificate; throws on failure.
    RawTlsClient(const std::string& host, std::uint16_t port, const tls::Identity& identity);
    ~RawTlsClient();
    RawTlsClient(const RawTlsClient&) = delete;
    RawTlsClient& operator=(const RawTlsClient&) = delete;

    // Sends the upgrade request (Sec-WebSocket-Protocol only if `subprotocol` is not empty) and returns
    // the response head (status line and headers).
    std::string upgrade(const std::string& path, const std::string& subprotocol);
    void send_frame(int opcode, const std::vector<std::uint8_t>& payload, bool fin = true);
    // A frame header announcing `announced` bytes, followed by only `prefix` of them.
    void send_partial_frame(int opcode, std::size_t announced, const std::vector<std::uint8_t>& prefix);
    Frame read_frame(std::chrono::milliseconds timeout = deadline);
    // True when the connection ends (EOF or error) within the timeout without more frames being needed.
    bool wait_eof(std::chrono::milliseconds timeout = deadline);

private:
    void write_frame(int opcode, std::size_t announced, const std::vector<std::uint8_t>& payload, bool fin);
    int read_some(std::uint8_t* out, std::size_t size, std::chrono::milliseconds timeout);
    bool read_exact(std::uint8_t* out, std::size_t size, std::chrono::milliseconds timeout);

    int fd_ = -1;
    void* ctx_ = nullptr; // SSL_CTX
    void* ssl_ = nullptr; // SSL
    std::vector<std::uint8_t> pending_;
};

// Plain TCP to the SHIP port (no TLS): sends `text`, returns what came back before EOF or the timeout.
std::string plain_tcp_exchange(std::uint16_t port, const std::string& text,
                               std::chrono::milliseconds timeout = deadline);

// A TCP listener that never speaks (the kernel completes the handshake from the backlog): dials to it hang.
class BlackHole {
public:
    BlackHole();
    ~BlackHole();
    std::uint16_t port() const { return port_; }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

} // namespace ship::net::test
