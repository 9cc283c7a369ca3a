// The SHIP Pairing Service record, digest, replay guard and QR fields against the vectors in
// tests/data/ship-pairing-service-vectors.json (V1 = Annex A.3 as ship-go, OpenEEBUS and hupe1980/eebus carry
// it; V2–V6 and the anti-vectors derived from their published behaviour), and the persisted state.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <rapidjson/document.h>

#include "../util/owner_queue.hpp"
#include "mdns/avahi_session.hpp"
#include "mdns/pairing_service.hpp"
#include "mdns/pairing_store.hpp"
#include "tls/fingerprint.hpp"

using namespace ship::mdns;

namespace {

const rapidjson::Document& vectors() {
    static const rapidjson::Document doc = [] {
        const char* dir = std::getenv("SHIPD_TEST_DATA");
        if (!dir) throw std::runtime_error("SHIPD_TEST_DATA is not set (run the tests through meson test)");
        std::ifstream in(std::filesystem::path(dir) / "ship-pairing-service-vectors.json");
        std::stringstream text;
        text << in.rdbuf();
        rapidjson::Document d;
        d.Parse(text.str().c_str());
        if (d.HasParseError() || !d.IsObject()) throw std::runtime_error("cannot read the vector file");
        return d;
    }();
    return doc;
}

const rapidjson::Value& vector(const std::string& name) {
    for (const auto& v : vectors()["vectors"].GetArray())
        if (name == v["name"].GetString()) return v;
    throw std::runtime_error("no vector " + name);
}

std::string text(const rapidjson::Value& v, const char* key) {
    return v[key].GetString();
}

PairingSecret secret_of(const std::string& hex) {
    auto bytes = parse_hex(hex, pairing_secret_bytes);
    REQUIRE(bytes);
    PairingSecret s{};
    std::copy(bytes->begin(), bytes->end(), s.begin());
    return s;
}

PairingAnnouncement record_of(const rapidjson::Value& v) {
    const auto& r = v["record"];
    PairingAnnouncement a;
    a.for_id = text(r, "forId");
    a.for_par = text(r, "forPar");
    a.trust_id = text(r, "trustId");
    a.trust_par = text(r, "trustPar");
    a.trust_curve = text(r, "trustCurve");
    a.trust_nonce = text(r, "trustNonce");
    return a;
}

// The RDATA form: each string preceded by its length byte (Avahi's list does this on the wire).
std::string rdata_hex(const std::vector<std::string>& txt) {
    AvahiStringList* list = to_avahi_txt(txt);
    std::vector<std::uint8_t> bytes(avahi_string_list_serialize(list, nullptr, 0));
    avahi_string_list_serialize(list, bytes.data(), bytes.size());
    avahi_string_list_free(list);
    std::string out = hex_upper(bytes.data(), bytes.size());
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

} // namespace

TEST_CASE("pairing V1 (Annex A.3): message, key and digest", "[pairing][vectors]") {
    const auto& v = vector("V1");
    const auto a = record_of(v);
    CHECK(pairing_digest_message(a) == text(v, "message"));
    CHECK(pairing_digest_message(a).size() == 326);
    CHECK(pairing_digest(secret_of(text(v, "secret")), a) == text(v, "digest"));
}

TEST_CASE("pairing V1 through V6: every digest", "[pairing][vectors]") {
    for (const auto& v : vectors()["vectors"].GetArray()) {
        INFO(v["name"].GetString() << ": " << v["source"].GetString());
        CHECK(pairing_digest(secret_of(text(v, "secret")), record_of(v)) == text(v, "digest"));
    }
}

TEST_CASE("pairing V2: the TXT record on the wire, in Table 1's order, and read back", "[pairing][vectors]") {
    const auto& v = vector("V2");
    const auto signed_record = sign_pairing(record_of(v), secret_of(text(v, "secret")));
    const auto txt = encode_pairing_txt(signed_record);
    REQUIRE(txt.size() == 11);
    CHECK(txt.front() == "txtvers=1");
    CHECK(txt.back() == "digest=" + text(v, "digest"));
    CHECK(rdata_hex(txt) == text(v, "txt_rdata_hex"));
    const auto parsed = parse_pairing_txt(txt);
    INFO(parsed.error);
    REQUIRE(parsed.announcement);
    CHECK(*parsed.announcement == signed_record);
}

TEST_CASE("pairing V4 and the anti-vectors: none of them verifies", "[pairing][vectors]") {
    const auto& v4 = vector("V4");
    auto a = record_of(v4);
    CHECK(pairing_digest(secret_of(text(v4, "secret")), a) == text(v4, "digest"));
    a.digest = text(v4, "announced_digest");
    ReplayGuard guard;
    CHECK(evaluate_pairing(a, a.for_id, a.for_par, secret_of(text(v4, "secret")), guard) ==
          PairingVerdict::digest_mismatch);
    CHECK_FALSE(guard.seen(a.digest)); // a refused digest never enters the ring
    const auto& v1 = vector("V1");
    for (const auto& anti : vectors()["anti_vectors"].GetArray()) {
        INFO(anti["name"].GetString() << ": " << anti["source"].GetString());
        auto forged = record_of(v1);
        forged.digest = anti["digest"].GetString();
        ReplayGuard g;
        CHECK(evaluate_pairing(forged, forged.for_id, forged.for_par, secret_of(text(v1, "secret")), g) ==
              PairingVerdict::digest_mismatch);
    }
}

TEST_CASE("pairing V6: fingerprints are SHA-256 of the DER, and the QR text carries FPH256 and SPSEC",
          "[pairing][vectors]") {
    const auto& v = vector("V6");
    CHECK(ship::tls::certificate_fingerprint_pem(text(v, "devA_certificate")) == text(v, "devA_fingerprint"));
    CHECK(ship::tls::certificate_fingerprint_pem(text(v, "devZ_certificate")) == text(v, "devZ_fingerprint"));
    const auto qr = parse_installation_qr(text(v, "qr"));
    REQUIRE(qr);
    CHECK(qr->at("SKI") == text(v, "devA_ski"));
    CHECK(qr->at("ID") == "i:12345_u:shipd-devA");
    CHECK(qr->at("FPH256") == text(v, "devA_fingerprint"));
    CHECK(qr->at("SPSEC") == text(v, "secret"));
    // What devZ announces from that QR text verifies on devA, once.
    auto a = record_of(v);
    a = sign_pairing(a, secret_of(qr->at("SPSEC")));
    CHECK(a.digest == text(v, "digest"));
    ReplayGuard guard;
    CHECK(evaluate_pairing(a, qr->at("ID"), qr->at("FPH256"), secret_of(text(v, "secret")), guard) ==
          PairingVerdict::accepted);
    CHECK(evaluate_pairing(a, qr->at("ID"), qr->at("FPH256"), secret_of(text(v, "secret")), guard) ==
          PairingVerdict::replay);
    // Addressed to another node (ID or fingerprint): not ours to judge, and not stored.
    CHECK(evaluate_pairing(a, "i:1_u:other", qr->at("FPH256"), secret_of(text(v, "secret")), guard) ==
          PairingVerdict::not_for_us);
    CHECK(evaluate_pairing(a, qr->at("ID"), text(v, "devZ_fingerprint"), secret_of(text(v, "secret")),
                           guard) == PairingVerdict::not_for_us);
}

TEST_CASE("pairing QR: ship-go's field order, IDs with colons, the V1 text with grouped SKI", "[pairing]") {
    const auto v1 = parse_installation_qr(text(vector("V1"), "qr"));
    REQUIRE(v1);
    CHECK(v1->at("SKI") == "A80556A243F57CA17B0D577A59B711B79EB4856C");
    CHECK(v1->at("ID") == "i:983327_u:C8277H008F-3");
    CHECK(v1->at("SPSEC") == "7A37DCF81BDB50F8E92CFA4160CCB3DE");
    CHECK_FALSE(parse_installation_qr("NOTSHIP;ID:x;ENDSHIP;"));
    CHECK(parse_installation_qr("SHIP;ID:x;")->at("ID") == "x"); // ENDSHIP missing: accepted
    const PairingSecret secret = secret_of("00112233445566778899AABBCCDDEEFF");
    CHECK(with_pairing_fields("SHIP;SKI:ab;ID:x;CAT:2;ENDSHIP;", std::string(64, 'A'), secret) ==
          "SHIP;SKI:ab;ID:x;CAT:2;FPH256:" + std::string(64, 'A') +
              ";SPSEC:00112233445566778899AABBCCDDEEFF;ENDSHIP;");
}

TEST_CASE("pairing TXT: strict reading refuses what ship-go, OpenEEBUS and hupe1980/eebus refuse",
          "[pairing]") {
    const auto& v = vector("V1");
    auto a = record_of(v);
    a.digest = text(v, "digest");
    const auto good = encode_pairing_txt(a);
    REQUIRE(parse_pairing_txt(good).announcement);
    auto with = [&](const std::string& key, const std::string& value) {
        auto txt = good;
        for (auto& s : txt)
            if (s.rfind(key + "=", 0) == 0) s = key + "=" + value;
        return parse_pairing_txt(txt);
    };
    CHECK_FALSE(with("txtvers", "2").announcement);
    CHECK_FALSE(with("parType", "fpSha1").announcement);
    CHECK_FALSE(with("type", "addDevice").announcement);
    CHECK_FALSE(with("alg", "hmacSha1").announcement);
    CHECK_FALSE(with("trustCurve", "secp384r1").announcement);
    CHECK(with("trustCurve", "brainpoolP256r1").announcement);
    CHECK_FALSE(with("forId", "").announcement);
    CHECK_FALSE(with("trustNonce", "bdcee427fa7208df3c1f2a749ba6f4d4").announcement); // lower case
    CHECK_FALSE(with("digest", std::string(64, 'a')).announcement);
    CHECK_FALSE(with("forPar", std::string(63, 'A')).announcement);
    // txtvers must come first.
    auto moved = good;
    std::rotate(moved.begin(), moved.begin() + 1, moved.end());
    CHECK_FALSE(parse_pairing_txt(moved).announcement);
    // Keys are case-sensitive (OpenEEBUS, hupe1980/eebus): `partype` is not `parType`.
    auto lower = good;
    lower[1] = "partype=fpSha256";
    CHECK_FALSE(parse_pairing_txt(lower).announcement);
    // Unknown keys ignored; a repeated key keeps its first value (the digest covers that one).
    auto extra = good;
    extra.push_back("forId=i:1_u:evil");
    extra.push_back("vendor=x");
    const auto kept = parse_pairing_txt(extra);
    REQUIRE(kept.announcement);
    CHECK(kept.announcement->for_id == a.for_id);
}

TEST_CASE("pairing replay guard: a ring of ten, newest at next - 1, evicted digests count as new",
          "[pairing]") {
    ReplayGuard guard;
    CHECK(guard.next() == 0);
    guard.store("D0");
    CHECK(guard.next() == 2);
    CHECK(guard.seen("D0"));
    for (int i = 1; i <= 9; ++i)
        guard.store("D" + std::to_string(i));
    CHECK(guard.next() == 1); // wrapped
    CHECK(guard.seen("D0"));
    guard.store("D10"); // overwrites entry 1, where D0 was
    CHECK_FALSE(guard.seen("D0"));
    CHECK(guard.seen("D10"));
    CHECK(guard.entries()[0]->digest == "D10");
}

TEST_CASE("pairing state: secret, replay guard and paired device survive a restart; the file is 0600",
          "[pairing]") {
    ship::test::OwnerQueue owner;
    const auto dir = std::filesystem::temp_directory_path() / ("shipd-pairing-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    PairingSecret first{};
    {
        auto store = PairingStore::load(dir, owner.post());
        first = store.secret();
        CHECK(first != PairingSecret{});
        // A first start writes the new secret off the caller's thread, like every later save.
        bool created = false;
        store.save([&](std::optional<std::string> error) { created = !error; });
        REQUIRE(owner.run_until([&] { return created; }));
        struct stat st {};
        REQUIRE(::stat(store.path().c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
        store.guard().store(text(vector("V1"), "digest"));
        store.set_paired(PairingStore::Paired{std::string(64, 'D'), "i:1_u:devZ", ""});
        bool saved = false;
        store.save([&](std::optional<std::string> error) { saved = !error; });
        store.save(); // rides along
        REQUIRE(owner.run_until([&] { return saved; }));
    }
    auto again = PairingStore::load(dir, owner.post());
    CHECK(again.secret() == first);
    CHECK(again.guard().seen(text(vector("V1"), "digest")));
    REQUIRE(again.paired());
    CHECK(again.paired()->ship_id == "i:1_u:devZ");
    // A damaged file is refused, not replaced: the secret is printed on the device.
    std::ofstream(dir / "pairing.json") << "{\"version\":1,";
    CHECK_THROWS_WITH(PairingStore::load(dir, owner.post()), Catch::Contains("corrupt"));
    std::filesystem::remove_all(dir);
}
