// The SHIP dialling side: TLS with the node certificate, ALPN http/1.1 only, the server's SKI checked against
// the expected one inside the handshake, upgrade with subprotocol `ship` (retried once at "/"), bounded time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "net/link.hpp"

namespace ship::net {

class Strand;

struct ClientConfig {
    // The node's identity. Both empty = present no certificate at all (only tests want that).
    std::string certificate_pem;
    std::string private_key_pem;
    bool tls12_only = false;
    LinkSettings link;
    // From the dial to the opened WebSocket (TCP, TLS, upgrade, the retry at "/" included).
    std::chrono::milliseconds connect_timeout{10'000};
};

struct DialRequest {
    // A numeric address: "192.0.2.7", "::1", or IPv6 link-local with its zone, "fe80::1%eth0" (the zone is
    // handed to getaddrinfo, which turns it into sin6_scope_id; without it the kernel refuses the connect).
    // A host name also works but is resolved with a blocking getaddrinfo on the strand: avoid.
    std::string host;
    std::uint16_t port = 0;
    std::string path = "/ship/"; // from mDNS TXT `path`; if the upgrade there fails, "/" is tried once
    std::string expected_ski;    // 40 lower-case hex: the server's certificate must carry exactly this SKI
};

// Strand only. Outlive the Links it dialled, or they are cut silently.
class Client {
public:
    Client(Strand& strand, ClientConfig config); // throws std::runtime_error on a bad certificate or key
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Starts a dial; the Link reports on_open or on_closed (by transport, was_open false: refused, timeout,
    // TLS/SKI failure with the reason, upgrade refused). Link::close() or dropping the Link cancels it.
    // Null once stop was requested.
    std::shared_ptr<Link> dial(const DialRequest& request, LinkHandler& handler);

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace ship::net
