// The node's own identity: what generate_identity puts into the certificate, and how load_or_create_identity
// keeps the SKI stable across restarts and refuses anything that would silently change or expose it.
#include <catch2/catch.hpp>

#include "ship/ski.hpp"
#include "tls/identity.hpp"
#include "tls/peer_check.hpp"
#include "tls/pem.hpp"
#include "tls/test_certs.hpp"
#include "tls_test_support.hpp"
#include "util/atomic_file.hpp"

#include <ctime>
#include <functional>

using namespace ship::tls;
using tls_test::mode_of;
using tls_test::TempDir;
namespace fs = std::filesystem;

namespace {

X509Ptr parse(const std::string& pem) {
    auto cert = parse_certificate_pem(pem);
    REQUIRE(cert);
    return cert;
}

std::string name_entry(const X509* cert, int nid) {
    const X509_NAME* name = X509_get_subject_name(cert);
    const int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    if (idx < 0) return {};
    const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                       static_cast<std::size_t>(ASN1_STRING_length(value)));
}

// Days and seconds from `from` to `to`.
std::pair<int, int> span(const ASN1_TIME* from, const ASN1_TIME* to) {
    int days = 0, seconds = 0;
    REQUIRE(ASN1_TIME_diff(&days, &seconds, from, to) == 1);
    return {days, seconds};
}

std::string message_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const std::exception& e) {
        return e.what();
    }
    FAIL("expected an exception");
    return {};
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

} // namespace

TEST_CASE("generate_identity makes a SHIP certificate", "[tls][identity]") {
    const Identity id = generate_identity({"shipd-0123456789", "Example GmbH", "Energy", "DE"});
    const auto cert = parse(id.certificate_pem);
    const auto key = parse_private_key_pem(id.private_key_pem);
    REQUIRE(key);

    SECTION("ECDSA P-256 key, matching the certificate, ECDSA-SHA256 self-signature") {
        CHECK(EVP_PKEY_is_a(key.get(), "EC"));
        CHECK(EVP_PKEY_get_bits(key.get()) == 256);
        CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
        CHECK(X509_get_signature_nid(cert.get()) == NID_ecdsa_with_SHA256);
        CHECK(X509_verify(cert.get(), X509_get0_pubkey(cert.get())) == 1);
        CHECK(X509_NAME_cmp(X509_get_issuer_name(cert.get()), X509_get_subject_name(cert.get())) == 0);
        CHECK(X509_get_version(cert.get()) == X509_VERSION_3);
    }
    SECTION("subject: CN is the SHIP ID, O/OU/C as given") {
        CHECK(name_entry(cert.get(), NID_commonName) == "shipd-0123456789");
        CHECK(name_entry(cert.get(), NID_organizationName) == "Example GmbH");
        CHECK(name_entry(cert.get(), NID_organizationalUnitName) == "Energy");
        CHECK(name_entry(cert.get(), NID_countryName) == "DE");
    }
    SECTION("valid from now for about 10 years") {
        std::time_t now = std::time(nullptr);
        CHECK(X509_cmp_time(X509_get0_notBefore(cert.get()), &now) <= 0);
        const auto [days, seconds] = span(X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get()));
        CHECK(days >= 3652); // 10 calendar years hold 2 or 3 leap days
        CHECK(days <= 3653);
        const auto [age_days, age_seconds] = span(X509_get0_notBefore(cert.get()), nullptr); // nullptr = now
        CHECK(age_days == 0);
        CHECK(age_seconds < 60);
    }
    SECTION("BasicConstraints CA:TRUE and KeyUsage digitalSignature, both critical") {
        int critical = 0;
        auto* constraints = static_cast<BASIC_CONSTRAINTS*>(
            X509_get_ext_d2i(cert.get(), NID_basic_constraints, &critical, nullptr));
        REQUIRE(constraints);
        CHECK(constraints->ca != 0);
        CHECK(critical == 1);
        BASIC_CONSTRAINTS_free(constraints);

        CHECK(X509_get_key_usage(cert.get()) == KU_DIGITAL_SIGNATURE);
        auto* usage =
            static_cast<ASN1_BIT_STRING*>(X509_get_ext_d2i(cert.get(), NID_key_usage, &critical, nullptr));
        REQUIRE(usage);
        CHECK(critical == 1);
        ASN1_BIT_STRING_free(usage);
    }
    SECTION("SKI is the method-1 hash, 40 lower-case hex; no AKI") {
        CHECK(ship::is_canonical_ski(id.ski));
        CHECK(computed_ski(cert.get()) == std::optional<std::string>(id.ski));
        CHECK(X509_get_ext_by_NID(cert.get(), NID_authority_key_identifier, -1) < 0);
    }
}

TEST_CASE("every generated identity is a new key with a new serial", "[tls][identity]") {
    const Identity a = generate_identity({"same-id", {}, {}, {}});
    const Identity b = generate_identity({"same-id", {}, {}, {}});
    CHECK(a.ski != b.ski);
    const auto ca = parse(a.certificate_pem);
    const auto cb = parse(b.certificate_pem);
    CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(ca.get()), X509_get0_serialNumber(cb.get())) != 0);
    CHECK(name_entry(ca.get(), NID_organizationName).empty()); // optional fields omitted when empty
}

TEST_CASE("generate_identity refuses an unusable subject", "[tls][identity]") {
    CHECK_THROWS_AS(generate_identity({"", {}, {}, {}}), std::invalid_argument);
    CHECK_THROWS_AS(generate_identity({std::string(65, 'x'), {}, {}, {}}), std::invalid_argument);
    CHECK_THROWS_AS(generate_identity({"ok", {}, {}, "DEU"}), std::invalid_argument);
}

TEST_CASE("load_or_create_identity creates the identity once and loads the same SKI afterwards",
          "[tls][identity]") {
    TempDir dir;
    tls_test::ScopedUmask umask(0); // the files must be private whatever the umask
    const auto state = dir.path / "state";
    const Identity first = load_or_create_identity(state, {"shipd-node", {}, {}, {}});

    CHECK(mode_of(state) == 0700);
    CHECK(mode_of(state / "key.pem") == 0600);
    CHECK(mode_of(state / "cert.pem") == 0600);
    CHECK(ship::util::read_file(state / "cert.pem") == std::optional<std::string>(first.certificate_pem));
    CHECK(check_peer_certificate(parse(first.certificate_pem).get()).ski == first.ski);

    // A later start, even with a different configured subject, keeps the identity peers trust.
    const Identity second = load_or_create_identity(state, {"renamed-node", {}, {}, {}});
    CHECK(second.ski == first.ski);
    CHECK(second.certificate_pem == first.certificate_pem);
    CHECK(second.private_key_pem == first.private_key_pem);
}

TEST_CASE("load_or_create_identity refuses a key readable by others", "[tls][identity]") {
    TempDir dir;
    load_or_create_identity(dir.path, {"node", {}, {}, {}});
    const auto key = dir.path / "key.pem";
    REQUIRE(::chmod(key.c_str(), 0644) == 0);

    const std::string what = message_of([&] { load_or_create_identity(dir.path, {"node", {}, {}, {}}); });
    CHECK(contains(what, key.string()));
    CHECK(contains(what, "chmod 600"));
    CHECK(contains(what, "0644"));

    REQUIRE(::chmod(key.c_str(), 0600) == 0); // the fix it names works
    CHECK_NOTHROW(load_or_create_identity(dir.path, {"node", {}, {}, {}}));
}

TEST_CASE("load_or_create_identity refuses a certificate that is not the key's", "[tls][identity]") {
    TempDir dir;
    const Identity mine = load_or_create_identity(dir.path, {"node", {}, {}, {}});
    const Identity other = generate_identity({"other", {}, {}, {}});
    ship::util::write_file_atomic(dir.path / "cert.pem", other.certificate_pem);

    const std::string what = message_of([&] { load_or_create_identity(dir.path, {"node", {}, {}, {}}); });
    CHECK(contains(what, "does not match"));
    CHECK(contains(what, (dir.path / "cert.pem").string()));
    // Nothing was replaced: the original key is still there for the operator to restore the pair.
    CHECK(ship::util::read_file(dir.path / "key.pem") == std::optional<std::string>(mine.private_key_pem));
}

TEST_CASE("load_or_create_identity refuses a certificate that breaks the SHIP rules", "[tls][identity]") {
    TempDir dir;
    const auto bad = ship::tls::testing::make_bad_identity(ship::tls::testing::BadCertificate::missing_ski);
    ship::util::write_file_atomic(dir.path / "key.pem", bad.private_key_pem);
    ship::util::write_file_atomic(dir.path / "cert.pem", bad.certificate_pem);

    const std::string what = message_of([&] { load_or_create_identity(dir.path, {"node", {}, {}, {}}); });
    CHECK(contains(what, "breaks the SHIP certificate rules"));
    CHECK(contains(what, "no Subject Key Identifier"));
}

TEST_CASE("load_or_create_identity never regenerates when one of the two files is missing",
          "[tls][identity]") {
    TempDir dir;
    const Identity id = load_or_create_identity(dir.path, {"node", {}, {}, {}});

    SECTION("lone cert.pem") {
        fs::remove(dir.path / "key.pem");
        const std::string what = message_of([&] { load_or_create_identity(dir.path, {"node", {}, {}, {}}); });
        CHECK(contains(what, (dir.path / "key.pem").string()));
        CHECK(contains(what, "missing"));
        CHECK_FALSE(fs::exists(dir.path / "key.pem"));
        CHECK(ship::util::read_file(dir.path / "cert.pem") == std::optional<std::string>(id.certificate_pem));
    }
    SECTION("lone key.pem") {
        fs::remove(dir.path / "cert.pem");
        const std::string what = message_of([&] { load_or_create_identity(dir.path, {"node", {}, {}, {}}); });
        CHECK(contains(what, (dir.path / "cert.pem").string()));
        CHECK_FALSE(fs::exists(dir.path / "cert.pem"));
    }
}

TEST_CASE("load_or_create_identity names the file that holds garbage", "[tls][identity]") {
    TempDir dir;
    load_or_create_identity(dir.path, {"node", {}, {}, {}});

    SECTION("key") {
        ship::util::write_file_atomic(dir.path / "key.pem", "not a key\n");
        CHECK(contains(message_of([&] {
                           load_or_create_identity(dir.path, {"node", {}, {}, {}});
                       }),
                       (dir.path / "key.pem").string()));
    }
    SECTION("certificate") {
        ship::util::write_file_atomic(dir.path / "cert.pem", "");
        CHECK(contains(message_of([&] {
                           load_or_create_identity(dir.path, {"node", {}, {}, {}});
                       }),
                       (dir.path / "cert.pem").string()));
    }
}
