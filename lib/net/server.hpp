// The SHIP listening side: TLS ≥ 1.2 with a required client certificate checked by SHIP's SKI rule inside the
// handshake (no CA list sent, no tickets, no resumption), then an owner decision, then the `ship` upgrade.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "net/link.hpp"

namespace ship::net {

class Strand;

// The owner's verdict on an incoming connection whose TLS handshake (and SKI check) succeeded, asked before
// the WebSocket upgrade is answered. Refused ⇒ an HTTP error (503 unless told otherwise) with the reason as
// body, the Link never opens. Done here rather than in the TLS verify callback because the owner (double
// connection, limits) works with Links on the strand, and an HTTP status tells the peer why; the SKI is
// already proven by then and no WebSocket byte has been exchanged.
struct Admission {
    LinkHandler* handler = nullptr; // null = refused
    std::string refusal;
    unsigned int http_status = 503;

    static Admission accept(LinkHandler& handler) { return {&handler, {}, 0}; }
    static Admission refuse(std::string reason, unsigned int http_status = 503) {
        return {nullptr, std::move(reason), http_status};
    }
};

// Gets the new Link (role server, peer_ski and remote_address set, not yet open). To accept, keep the
// shared_ptr (dropping it cuts the connection) and return accept(handler); on_open follows.
using AdmissionHook = std::function<Admission(const std::shared_ptr<Link>& link)>;

// A TLS handshake the server failed: bad or missing certificate (the reason is check_peer_certificate's
// text, or the TLS alert we sent). For logs and tests; no Link exists for it.
struct HandshakeFailure {
    std::string remote_address;
    std::string reason;
};

// Asked inside the TLS handshake, once the client's certificate passed the SHIP rule: a reason refuses the
// SKI there (the TLS handshake fails; no HTTP or WebSocket byte is exchanged, and no handshake failure is
// reported: the hook keeps its own account). `remote` is "192.0.2.1:4711".
using TlsRefusalHook =
    std::function<std::optional<std::string>(const std::string& ski, const std::string& remote)>;

struct ServerConfig {
    std::string certificate_pem; // the node's identity (lib/tls)
    std::string private_key_pem;
    // "" = every address (IPv6 and IPv4 on one dual-stack socket). A numeric address binds exactly that one
    // (IPv4 on an IPv4 socket; IPv6, with an optional %zone, on an IPv6-only socket; "0.0.0.0" and "::" are
    // every address of that family). An interface name is libwebsockets' choice of one of its addresses:
    // prefer numeric ones (net/listen_address.hpp resolves names).
    std::string listen_address;
    std::uint16_t port = 0;  // 0 = a free port, see Server::port()
    bool tls12_only = false; // cap at TLS 1.2 (TLS 1.3 suites stay at OpenSSL defaults otherwise)
    LinkSettings link;
    AdmissionHook admit;                                              // required
    std::function<void(const HandshakeFailure&)> on_handshake_failed; // optional
    TlsRefusalHook refuse_in_tls;                                     // optional
};

// Strand only. Listening from construction (throws std::runtime_error naming the address and port if that
// fails) until destruction. Its Links should be closed or dropped first; any left are cut silently.
class Server {
public:
    Server(Strand& strand, ServerConfig config);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    std::uint16_t port() const;
    // What is bound, for logs and the ListenAddresses property: "127.0.0.1:4711", "[::1]:4711", "[::]:4711".
    std::string address() const;

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ship::net
