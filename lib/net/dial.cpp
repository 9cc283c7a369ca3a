// Dialling one Link: lws client connect at the expected path (and "/" once more), the server's SKI checked in
// the TLS handshake, the connect timeout.
#include <algorithm>

#include <libwebsockets.h>
#include <spdlog/spdlog.h>

#include "net/detail.hpp"
#include "net/tls_setup.hpp"

namespace ship::net::detail {

namespace {
void* id_pointer(std::uint64_t id) {
    return reinterpret_cast<void*>(static_cast<std::uintptr_t>(id));
}
} // namespace

void LinkOps::start_dial(LwsLink& link, const DialRequest& request, std::chrono::milliseconds timeout) {
    link.host_ = request.host;
    link.port_ = request.port;
    link.expected_ski_ = request.expected_ski;
    link.peer_ski_ = request.expected_ski;
    link.dial_path_ = request.path.empty() ? "/" : request.path;
    link.path_ = link.dial_path_;
    link.remote_ = display_address(request.host, request.port);
    LwsLink* target = &link;
    link.timer_.start(timeout, [target, timeout] {
        LinkOps::end_now(*target,
                         CloseInfo{close_no_close_frame,
                                   "connect timeout after " + std::to_string(timeout.count()) + " ms",
                                   CloseInfo::By::transport, false, true});
    });
    if (!connect(link))
        end_now(link, CloseInfo{close_no_close_frame, "cannot connect to " + link.remote_,
                                CloseInfo::By::transport, false, false});
}

bool LinkOps::connect(LwsLink& link) {
    if (!link.endpoint_ || !link.endpoint_->vhost) return false;
    const std::string host_header = host_header_value(link.host_, link.port_);
    lws_client_connect_info info{};
    info.context = link.core_->context;
    info.vhost = link.endpoint_->vhost;
    info.address = link.host_.c_str();
    info.port = link.port_;
    info.path = link.dial_path_.c_str();
    info.host = host_header.c_str();
    info.origin = host_header.c_str();
    info.protocol = "ship";
    info.local_protocol_name = "ship";
    info.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                          LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    info.alpn = "http/1.1"; // never h2: a Go server would pick it
    info.ietf_version_or_minus_one = -1;
    info.opaque_user_data = id_pointer(link.id_);
    info.retry_and_idle_policy = link.endpoint_->retry;
    info.pwsi = &link.wsi_; // set before lws reports anything about the new wsi
    link.tls_failure_.clear();
    return lws_client_connect_via_info(&info) != nullptr;
}

int LinkOps::server_certificate(LwsLink& link, const PeerVerdict& verdict) {
    if (!verdict.ok) {
        link.tls_failure_ = "server certificate refused: " + verdict.reason;
    } else if (verdict.ski != link.expected_ski_) {
        link.tls_failure_ = "server SKI " + verdict.ski + " is not the expected " + link.expected_ski_;
    } else {
        link.peer_fingerprint_ = verdict.fingerprint;
        return 0;
    }
    spdlog::info("TLS to {}: {}", link.remote_, link.tls_failure_);
    return 1;
}

int LinkOps::before_request(LwsLink& link, lws* wsi) {
    const auto* verdict = verdict_of(lws_get_ssl(wsi));
    if (!verdict) {
        link.tls_failure_ = "server certificate was not checked during the TLS handshake";
        return -1;
    }
    if (!verdict->ok || verdict->ski != link.expected_ski_) {
        if (link.tls_failure_.empty()) server_certificate(link, *verdict);
        return -1;
    }
    return 0;
}

} // namespace ship::net::detail
