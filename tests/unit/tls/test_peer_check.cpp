// The SHIP peer-certificate rules (TC_SHIP_SEC_001/002): what passes, and the exact reason for what does not.
#include <catch2/catch.hpp>

#include "ship/ski.hpp"
#include "tls/certificate_builder.hpp"
#include "tls/identity.hpp"
#include "tls/peer_check.hpp"
#include "tls/pem.hpp"
#include "tls/test_certs.hpp"
#include "tls_test_support.hpp"

#include <algorithm>
#include <fstream>
#include <openssl/core_names.h>
#include <openssl/x509v3.h>
#include <vector>

using namespace ship::tls;
using ship::tls::testing::BadCertificate;
using ship::tls::testing::make_bad_identity;

namespace {

X509Ptr parse(const std::string& pem) {
    auto cert = parse_certificate_pem(pem);
    REQUIRE(cert);
    return cert;
}

std::string without_colons_and_space(std::string s) {
    s.erase(std::remove_if(s.begin(), s.end(), [](char c) { return c == ':' || c == '\n' || c == ' '; }),
            s.end());
    return s;
}

} // namespace

TEST_CASE("a generated identity passes the SHIP peer check with its own SKI", "[tls][peer_check]") {
    const Identity id = generate_identity({"shipd-test-1", "shipd", "test", "DE"});
    CHECK(ship::is_canonical_ski(id.ski));

    const auto cert = parse(id.certificate_pem);
    const PeerCheck check = check_peer_certificate(cert.get());
    CHECK(check.ok);
    CHECK(check.reason.empty());
    CHECK(check.ski == id.ski);
    CHECK(computed_ski(cert.get()) == std::optional<std::string>(id.ski));
}

TEST_CASE("the SKI agrees with the openssl command line tool", "[tls][peer_check]") {
    if (!tls_test::have_openssl_cli()) {
        WARN("openssl CLI not installed; cross-check skipped");
        return;
    }
    tls_test::TempDir dir;
    const Identity id = generate_identity({"shipd-cli-check", {}, {}, {}});
    const auto file = dir.path / "cert.pem";
    std::ofstream(file) << id.certificate_pem;

    // What OpenSSL prints for the extension, normalised as a user would paste it.
    const auto printed = tls_test::run_shell("openssl x509 -in '" + file.string() +
                                             "' -noout -ext subjectKeyIdentifier | tail -n 1");
    REQUIRE(printed);
    CHECK(ship::normalize_ski(without_colons_and_space(*printed)) == std::optional<std::string>(id.ski));

    // Independently of the extension: SHA-1 over the last 65 bytes of the SubjectPublicKeyInfo (04‖X‖Y).
    const auto hashed =
        tls_test::run_shell("openssl x509 -in '" + file.string() +
                            "' -noout -pubkey | openssl pkey -pubin -outform DER | tail -c 65 | "
                            "openssl dgst -sha1 -r | cut -d' ' -f1");
    REQUIRE(hashed);
    CHECK(without_colons_and_space(*hashed) == id.ski);
}

// Elli / VW wallboxes encode BOOLEAN TRUE as 0x01 (DER says 0xFF); Go's parser refuses such certificates
// (ship-go needs a patched toolchain). OpenSSL parses them and keeps the bytes as sent, so the signature
// still verifies; the SKI comes from the key as always, and agrees with the openssl tool.
TEST_CASE("a certificate with BOOLEAN TRUE as 0x01 (Elli/VW wallboxes) passes with its SKI",
          "[tls][peer_check]") {
    const Identity id = testing::make_identity_with_boolean_true_as_01();
    const auto der = testing::certificate_der(id.certificate_pem);
    const std::vector<unsigned char> ca_true_01{0x30, 0x03, 0x01, 0x01, 0x01};
    const std::vector<unsigned char> ca_true_ff{0x30, 0x03, 0x01, 0x01, 0xff};
    CHECK(std::search(der.begin(), der.end(), ca_true_01.begin(), ca_true_01.end()) != der.end());
    CHECK(std::search(der.begin(), der.end(), ca_true_ff.begin(), ca_true_ff.end()) == der.end());

    const auto cert = parse(id.certificate_pem);
    const PeerCheck check = check_peer_certificate(cert.get());
    CHECK(check.ok);
    CHECK(check.reason.empty());
    CHECK(check.ski == id.ski);
    CHECK(computed_ski(cert.get()) == std::optional<std::string>(id.ski));
    // Signed over the bytes as sent, and still a CA with its critical flags set.
    CHECK(X509_verify(cert.get(), X509_get0_pubkey(cert.get())) == 1);
    CHECK((X509_get_extension_flags(cert.get()) & EXFLAG_CA) != 0);
    const int bc = X509_get_ext_by_NID(cert.get(), NID_basic_constraints, -1);
    REQUIRE(bc >= 0);
    CHECK(X509_EXTENSION_get_critical(X509_get_ext(cert.get(), bc)) == 1);
    if (!tls_test::have_openssl_cli()) return;
    tls_test::TempDir dir;
    const auto file = dir.path / "cert.pem";
    std::ofstream(file) << id.certificate_pem;
    const auto hashed =
        tls_test::run_shell("openssl x509 -in '" + file.string() +
                            "' -noout -pubkey | openssl pkey -pubin -outform DER | tail -c 65 | "
                            "openssl dgst -sha1 -r | cut -d' ' -f1");
    REQUIRE(hashed);
    CHECK(without_colons_and_space(*hashed) == id.ski);
}

TEST_CASE("no certificate at all is rejected", "[tls][peer_check]") {
    const PeerCheck check = check_peer_certificate(nullptr);
    CHECK_FALSE(check.ok);
    CHECK(check.reason == "peer sent no certificate");
    CHECK(check.ski.empty());
    CHECK_FALSE(computed_ski(nullptr));
}

TEST_CASE("SHIP 12.2: a certificate with the wrong key type or curve is rejected", "[tls][peer_check]") {
    SECTION("RSA key") {
        const auto bad = make_bad_identity(BadCertificate::rsa_key);
        const auto cert = parse(bad.certificate_pem);
        const PeerCheck check = check_peer_certificate(cert.get());
        CHECK_FALSE(check.ok);
        CHECK(check.ski.empty());
        CHECK(check.reason == "peer key is RSA, SHIP requires ECDSA P-256");
        CHECK(bad.expected_reason == check.reason);
        CHECK_FALSE(computed_ski(cert.get())); // not an EC key
    }
    SECTION("EC key on P-384") {
        const auto bad = make_bad_identity(BadCertificate::ec_p384_key);
        const auto cert = parse(bad.certificate_pem);
        const PeerCheck check = check_peer_certificate(cert.get());
        CHECK_FALSE(check.ok);
        CHECK(check.reason == "peer key is EC on secp384r1, SHIP requires P-256");
        // Its SKI extension is a correct method-1 hash: the curve alone is what fails it.
        CHECK(computed_ski(cert.get()) == std::optional<std::string>(bad.ski_extension));
    }
}

TEST_CASE("SHIP 12.2: a certificate without a usable SKI is rejected", "[tls][peer_check]") {
    SECTION("no SKI extension") {
        const auto bad = make_bad_identity(BadCertificate::missing_ski);
        CHECK(bad.ski_extension.empty());
        const PeerCheck check = check_peer_certificate(parse(bad.certificate_pem).get());
        CHECK_FALSE(check.ok);
        CHECK(check.reason == "peer certificate has no Subject Key Identifier");
    }
    SECTION("SKI of the wrong length") {
        const auto bad = make_bad_identity(BadCertificate::short_ski);
        CHECK(bad.ski_extension.size() == 16);
        const PeerCheck check = check_peer_certificate(parse(bad.certificate_pem).get());
        CHECK_FALSE(check.ok);
        CHECK(check.reason == "SKI extension is 8 bytes, SHIP requires 20");
    }
}

TEST_CASE("TC_SHIP_SEC_001: an SKI extension that is not SHA-1 of the certificate's own key is rejected",
          "[tls][peer_check]") {
    const auto bad = make_bad_identity(BadCertificate::ski_not_matching_key);
    const auto cert = parse(bad.certificate_pem);
    const auto actual = computed_ski(cert.get());
    REQUIRE(actual);
    const PeerCheck check = check_peer_certificate(cert.get());
    CHECK_FALSE(check.ok);
    CHECK(check.ski.empty());
    CHECK(check.reason ==
          "SKI extension " + bad.ski_extension + " is not SHA-1 of the public key (" + *actual + ")");
}

TEST_CASE("TC_SHIP_SEC_002: a new key whose SKI extension is forged to a trusted node's SKI is rejected",
          "[tls][peer_check]") {
    SECTION("forged from a named node") {
        const Identity trusted = generate_identity({"trusted", {}, {}, {}});
        const auto forged =
            make_bad_identity(BadCertificate::ski_of_other_certificate, {"forger", {}, {}, {}}, trusted.ski);
        CHECK(forged.ski_extension == trusted.ski); // it claims the trusted identity...
        const auto cert = parse(forged.certificate_pem);
        const PeerCheck check = check_peer_certificate(cert.get());
        CHECK_FALSE(check.ok); // ...but its key gives it away
        CHECK(check.reason == "SKI extension " + trusted.ski + " is not SHA-1 of the public key (" +
                                  *computed_ski(cert.get()) + ")");
        CHECK(check.ski.empty());
    }
    SECTION("forging without naming a node uses a fresh identity's SKI") {
        const auto forged = make_bad_identity(BadCertificate::ski_of_other_certificate);
        CHECK(ship::is_canonical_ski(forged.ski_extension));
        CHECK_FALSE(check_peer_certificate(parse(forged.certificate_pem).get()).ok);
    }
}

TEST_CASE("every bad certificate kind comes with a matching private key", "[tls][peer_check]") {
    for (const auto kind : {BadCertificate::rsa_key, BadCertificate::ec_p384_key, BadCertificate::missing_ski,
                            BadCertificate::short_ski, BadCertificate::ski_not_matching_key,
                            BadCertificate::ski_of_other_certificate}) {
        INFO(ship::tls::testing::to_string(kind));
        const auto bad = make_bad_identity(kind);
        const auto cert = parse(bad.certificate_pem);
        const auto key = parse_private_key_pem(bad.private_key_pem);
        REQUIRE(key);
        CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
        CHECK(check_peer_certificate(cert.get()).reason == bad.expected_reason);
    }
}

TEST_CASE("BOOLEAN TRUE encoded as 0x01 (as some wallboxes do) is accepted", "[tls][peer_check]") {
    const Identity id = generate_identity({"wallbox", {}, {}, {}});
    const auto cert = parse(id.certificate_pem);

    unsigned char* der = nullptr;
    const int len = i2d_X509(cert.get(), &der);
    REQUIRE(len > 0);
    std::vector<unsigned char> bytes(der, der + len);
    OPENSSL_free(der);

    // Every DER BOOLEAN TRUE (01 01 FF) in basicConstraints (critical, CA:TRUE) and keyUsage (critical)
    // becomes BER 01 01 01. Only the bytes right after each extension's OID are touched, so key and signature
    // bytes that happen to look alike stay intact. The signature no longer verifies, which SHIP does not
    // check (self-signed, no chain validation).
    std::size_t patched = 0;
    const std::vector<std::vector<unsigned char>> oids = {{0x06, 0x03, 0x55, 0x1d, 0x13},  // basicConstraints
                                                          {0x06, 0x03, 0x55, 0x1d, 0x0f}}; // keyUsage
    for (const auto& oid : oids) {
        const auto at = std::search(bytes.begin(), bytes.end(), oid.begin(), oid.end());
        REQUIRE(at != bytes.end());
        const auto from = static_cast<std::size_t>(at - bytes.begin()) + oid.size();
        for (std::size_t i = from; i + 2 < bytes.size() && i < from + 12; ++i) {
            if (bytes[i] == 0x01 && bytes[i + 1] == 0x01 && bytes[i + 2] == 0xff) {
                bytes[i + 2] = 0x01;
                ++patched;
            }
        }
    }
    REQUIRE(patched == 3); // basicConstraints critical + CA:TRUE, keyUsage critical

    const unsigned char* p = bytes.data();
    X509Ptr wallbox(d2i_X509(nullptr, &p, static_cast<long>(bytes.size())));
    REQUIRE(wallbox);
    int critical = 0;
    auto* constraints = static_cast<BASIC_CONSTRAINTS*>(
        X509_get_ext_d2i(wallbox.get(), NID_basic_constraints, &critical, nullptr));
    REQUIRE(constraints);
    CHECK(critical == 1);
    CHECK(constraints->ca != 0);
    BASIC_CONSTRAINTS_free(constraints);
    const PeerCheck check = check_peer_certificate(wallbox.get());
    CHECK(check.ok);
    CHECK(check.ski == id.ski);
}

TEST_CASE(
    "the SKI is computed over the uncompressed point even when the certificate carries a compressed one",
    "[tls][peer_check]") {
    const auto key = generate_ec_key("P-256");
    const auto plain = build_self_signed_certificate(key.get(), {"plain", {}, {}, {}}, SkiChoice::hash());
    REQUIRE(ASN1_STRING_length(X509_get0_pubkey_bitstr(plain.get())) == 65);
    const auto expected = computed_ski(plain.get());
    REQUIRE(expected);

    REQUIRE(EVP_PKEY_set_utf8_string_param(key.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                           OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED) == 1);
    const auto compressed =
        build_self_signed_certificate(key.get(), {"compressed", {}, {}, {}}, SkiChoice::none());
    REQUIRE(ASN1_STRING_length(X509_get0_pubkey_bitstr(compressed.get())) == 33);
    CHECK(computed_ski(compressed.get()) == expected);
}
