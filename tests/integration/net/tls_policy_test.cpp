// The server's TLS face as a third party sees it (openssl s_client): SHIP's TLS 1.2 suites, groups, no CA
// names in the CertificateRequest, no tickets, no session id (nothing to resume), ALPN http/1.1, 1.2 cap.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "harness.hpp"

using namespace ship::net;
using namespace ship::net::test;

namespace {

struct Files {
    Files() {
        char pattern_dir[] = "/tmp/shipd-net-tls-XXXXXX";
        dir = mkdtemp(pattern_dir);
    }
    ~Files() { std::filesystem::remove_all(dir); }
    std::string write(const std::string& name, const std::string& text) {
        const auto path = dir / name;
        std::ofstream(path) << text;
        return path.string();
    }
    std::filesystem::path dir;
};

// Runs s_client with stdin closed (it handshakes, prints, and leaves); returns stdout and stderr.
std::string s_client(std::uint16_t port, const std::string& options, const std::string& cert,
                     const std::string& key) {
    const std::string command = "timeout 20 openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                                " -cert " + cert + " -key " + key + " " + options + " </dev/null 2>&1";
    std::string output;
    FILE* pipe = popen(command.c_str(), "r");
    REQUIRE(pipe);
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof(buffer), pipe))
        output.append(buffer, n);
    pclose(pipe);
    return output;
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("openssl s_client: TLS 1.2 with the mandatory SHIP suite, and no client CA names sent",
          "[net][integration]") {
    const auto server_id = make_identity("server-tls");
    const auto client_id = make_identity("client-tls");
    Files files;
    const auto cert = files.write("cert.pem", client_id.certificate_pem);
    const auto key = files.write("key.pem", client_id.private_key_pem);
    StrandThread st;
    auto& acceptor = st.make<Acceptor>(st.strand(), server_id);
    const auto port = acceptor.port();

    const auto out = s_client(port, "-tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256", cert, key);
    INFO(out);
    CHECK(has(out, "Cipher is ECDHE-ECDSA-AES128-SHA256"));
    CHECK(has(out, "No client certificate CA names sent"));
    CHECK(has(out, "Protocol  : TLSv1.2"));
    CHECK_FALSE(has(out, "TLS session ticket:"));
    // The server's own certificate is the node identity; s_client saw the handshake through.
    CHECK(has(out, "CN = server-tls"));
}

TEST_CASE("openssl s_client: the second suite, groups P-256 and X25519, TLS 1.3, ALPN, no resumption",
          "[net][integration]") {
    const auto server_id = make_identity("server-tls2");
    const auto client_id = make_identity("client-tls2");
    Files files;
    const auto cert = files.write("cert.pem", client_id.certificate_pem);
    const auto key = files.write("key.pem", client_id.private_key_pem);
    StrandThread st;
    auto& acceptor = st.make<Acceptor>(st.strand(), server_id);
    const auto port = acceptor.port();

    SECTION("ECDHE-ECDSA-AES128-GCM-SHA256 is offered; other suites are not") {
        auto out = s_client(port, "-tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256", cert, key);
        CHECK(has(out, "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"));
        out = s_client(port, "-tls1_2 -cipher ECDHE-ECDSA-AES256-GCM-SHA384", cert, key);
        CHECK_FALSE(has(out, "Cipher is ECDHE-ECDSA-AES256-GCM-SHA384"));
    }
    SECTION("groups") {
        auto out = s_client(port, "-tls1_2 -groups P-256", cert, key);
        INFO(out);
        CHECK(has(out, "Server Temp Key: ECDH, prime256v1"));
        // In TLS 1.2 the groups list also names the curves the client accepts for ECDSA certificates, so a
        // client must list P-256 for our certificate; X25519 is still preferred for the key exchange.
        out = s_client(port, "-tls1_2 -groups X25519:P-256", cert, key);
        INFO(out);
        CHECK(has(out, "Server Temp Key: X25519"));
        out = s_client(port, "-tls1_3 -groups X25519", cert, key);
        CHECK(has(out, "Server Temp Key: X25519"));
        CHECK(has(out, "TLSv1.3"));
    }
    SECTION("older than TLS 1.2 is refused") {
        const auto out = s_client(port, "-tls1_1", cert, key);
        CHECK_FALSE(has(out, "Cipher is ECDHE"));
    }
    SECTION("ALPN: http/1.1 even when h2 is offered first") {
        const auto out = s_client(port, "-tls1_2 -alpn h2,http/1.1", cert, key);
        CHECK(has(out, "ALPN protocol: http/1.1"));
    }
    SECTION("nothing to resume: no session id, no ticket") {
        const auto session = (files.dir / "session.pem").string();
        auto out = s_client(port, "-tls1_2 -sess_out " + session, cert, key);
        INFO(out);
        REQUIRE(has(out, "Cipher is ECDHE-ECDSA"));
        CHECK(has(out, "Session-ID: \n"));
        CHECK_FALSE(has(out, "TLS session ticket"));
        if (std::filesystem::exists(session)) {
            out = s_client(port, "-tls1_2 -sess_in " + session, cert, key);
            CHECK_FALSE(has(out, "Reused,"));
        }
        out = s_client(port, "-tls1_3 -sess_out " + session, cert, key);
        CHECK_FALSE(has(out, "TLS session ticket"));
    }
}

TEST_CASE("openssl s_client: the TLS 1.2 cap refuses TLS 1.3", "[net][integration]") {
    const auto server_id = make_identity("server-cap");
    const auto client_id = make_identity("client-cap");
    Files files;
    const auto cert = files.write("cert.pem", client_id.certificate_pem);
    const auto key = files.write("key.pem", client_id.private_key_pem);
    StrandThread st;
    auto& acceptor = st.make<Acceptor>(st.strand(), server_id, LinkSettings{}, true);
    auto out = s_client(acceptor.port(), "-tls1_3", cert, key);
    CHECK_FALSE(has(out, "TLSv1.3"));
    out = s_client(acceptor.port(), "", cert, key);
    CHECK(has(out, "New, TLSv1.2"));
}
