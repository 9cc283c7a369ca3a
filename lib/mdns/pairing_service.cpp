#include "mdns/pairing_service.hpp"

#include <algorithm>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "mdns/txt.hpp"

namespace ship::mdns {

namespace {

constexpr std::string_view txtvers = "1";
constexpr std::string_view par_type = "fpSha256";
constexpr std::string_view request_type = "addCu";
constexpr std::string_view algorithm = "hmacSha256";
constexpr std::string_view curves[] = {"secp256r1", "brainpoolP256r1", "brainpoolP384r1"};

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// The ten digested pairs in Table 1's order; `digest` follows them on the wire.
std::vector<std::pair<std::string_view, std::string_view>> digested_pairs(const PairingAnnouncement& a) {
    return {{"txtvers", txtvers},          {"parType", par_type},
            {"forId", a.for_id},           {"forPar", a.for_par},
            {"trustId", a.trust_id},       {"trustPar", a.trust_par},
            {"trustCurve", a.trust_curve}, {"type", request_type},
            {"trustNonce", a.trust_nonce}, {"alg", algorithm}};
}

} // namespace

std::string hex_upper(const std::uint8_t* data, std::size_t size) {
    static constexpr char digits[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(2 * size);
    for (std::size_t i = 0; i < size; ++i) {
        out.push_back(digits[data[i] >> 4]);
        out.push_back(digits[data[i] & 0x0f]);
    }
    return out;
}

std::optional<std::vector<std::uint8_t>> parse_hex(std::string_view text, std::size_t bytes) {
    if (text.size() != 2 * bytes) return std::nullopt;
    std::vector<std::uint8_t> out(bytes);
    for (std::size_t i = 0; i < bytes; ++i) {
        const int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out[i] = static_cast<std::uint8_t>(hi * 16 + lo);
    }
    return out;
}

bool is_upper_hex(std::string_view text, std::size_t digits) {
    return text.size() == digits && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
           });
}

std::string pairing_digest_message(const PairingAnnouncement& announcement) {
    std::string m;
    for (const auto& [key, value] : digested_pairs(announcement)) {
        m.append(key);
        m.push_back('=');
        m.append(value);
        m.push_back(';'); // after every pair, the last (alg) included (anti-vector A3)
    }
    return m;
}

std::optional<std::string> pairing_digest(const PairingSecret& secret,
                                          const PairingAnnouncement& announcement) {
    // K = secret ‖ nonce as raw bytes, never their hex text (anti-vector A1), the nonce included (A2).
    const auto nonce = parse_hex(announcement.trust_nonce, pairing_nonce_bytes);
    if (!nonce) return std::nullopt;
    std::array<std::uint8_t, pairing_secret_bytes + pairing_nonce_bytes> key{};
    std::copy(secret.begin(), secret.end(), key.begin());
    std::copy(nonce->begin(), nonce->end(), key.begin() + pairing_secret_bytes);
    const std::string message = pairing_digest_message(announcement);
    std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
    std::size_t length = 0;
    if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                   reinterpret_cast<const unsigned char*>(message.data()), message.size(), out.data(),
                   out.size(), &length) ||
        length != 32)
        throw std::runtime_error("HMAC-SHA256 failed in OpenSSL");
    OPENSSL_cleanse(key.data(), key.size());
    return hex_upper(out.data(), length);
}

PairingAnnouncement sign_pairing(PairingAnnouncement announcement, const PairingSecret& secret) {
    auto digest = pairing_digest(secret, announcement);
    if (!digest) throw std::invalid_argument("trustNonce is not 32 hex digits");
    announcement.digest = std::move(*digest);
    return announcement;
}

std::vector<std::string> encode_pairing_txt(const PairingAnnouncement& announcement) {
    std::vector<std::string> txt;
    for (const auto& [key, value] : digested_pairs(announcement))
        txt.push_back(std::string(key) + "=" + std::string(value));
    txt.push_back("digest=" + announcement.digest);
    return txt;
}

PairingTxtResult parse_pairing_txt(const std::vector<std::string>& txt) {
    auto fail = [](std::string why) { return PairingTxtResult{std::nullopt, std::move(why)}; };
    std::map<std::string, std::string, std::less<>> values;
    bool first = true;
    for (const auto& item : txt) {
        const auto eq = item.find('=');
        if (eq == std::string::npos) continue; // a flag without a value means nothing here
        const std::string key = item.substr(0, eq);
        const std::string value = item.substr(eq + 1);
        if (first) {
            if (key != "txtvers") return fail("the first TXT string must be txtvers, not '" + key + "'");
            first = false;
        }
        if (key.empty()) return fail("a TXT string has an empty key");
        values.try_emplace(key, value); // the first occurrence is the one the digest covers
    }
    if (first) return fail("no txtvers");
    auto get = [&](std::string_view key) -> const std::string* {
        auto it = values.find(key);
        return it == values.end() ? nullptr : &it->second;
    };
    const std::pair<std::string_view, std::string_view> constants[] = {
        {"txtvers", txtvers}, {"parType", par_type}, {"type", request_type}, {"alg", algorithm}};
    for (const auto& [key, want] : constants) {
        const auto* v = get(key);
        if (!v) return fail("no " + std::string(key));
        if (*v != want)
            return fail(std::string(key) + " is '" + *v + "', the only defined value is '" +
                        std::string(want) + "'");
    }
    PairingAnnouncement a;
    const std::pair<std::string_view, std::string*> fields[] = {
        {"forId", &a.for_id},       {"forPar", &a.for_par},         {"trustId", &a.trust_id},
        {"trustPar", &a.trust_par}, {"trustCurve", &a.trust_curve}, {"trustNonce", &a.trust_nonce},
        {"digest", &a.digest}};
    for (const auto& [key, out] : fields) {
        const auto* v = get(key);
        if (!v || v->empty()) return fail(std::string(v ? "empty " : "no ") + std::string(key));
        *out = *v;
    }
    if (!is_utf8(a.for_id) || !is_utf8(a.trust_id)) return fail("forId or trustId is not UTF-8");
    if (!is_upper_hex(a.for_par, 64)) return fail("forPar is not 64 upper-case hex digits");
    if (!is_upper_hex(a.trust_par, 64)) return fail("trustPar is not 64 upper-case hex digits");
    if (!is_upper_hex(a.trust_nonce, 32)) return fail("trustNonce is not 32 upper-case hex digits");
    if (!is_upper_hex(a.digest, 64)) return fail("digest is not 64 upper-case hex digits");
    if (std::find(std::begin(curves), std::end(curves), a.trust_curve) == std::end(curves))
        return fail("trustCurve '" + a.trust_curve +
                    "' is not secp256r1, brainpoolP256r1 or brainpoolP384r1");
    return PairingTxtResult{std::move(a), {}};
}

ReplayGuard::ReplayGuard(std::size_t size)
    : entries_(std::max<std::size_t>(1, size)) {}

bool ReplayGuard::seen(std::string_view digest) const {
    return std::any_of(entries_.begin(), entries_.end(),
                       [&](const auto& e) { return e && e->alg == algorithm && e->digest == digest; });
}

void ReplayGuard::store(std::string_view digest) {
    if (next_ == 0) next_ = 1;
    entries_[next_ - 1] = Entry{std::string(algorithm), std::string(digest)};
    next_ = next_ % entries_.size() + 1;
}

bool ReplayGuard::restore(std::vector<std::optional<Entry>> entries, std::size_t next) {
    if (entries.size() != entries_.size() || next > entries.size()) return false;
    entries_ = std::move(entries);
    next_ = next;
    return true;
}

std::string_view to_string(PairingVerdict verdict) {
    switch (verdict) {
    case PairingVerdict::accepted:
        return "accepted";
    case PairingVerdict::not_for_us:
        return "not-for-us";
    case PairingVerdict::replay:
        return "replay";
    case PairingVerdict::digest_mismatch:
        return "digest-mismatch";
    }
    return "digest-mismatch";
}

PairingVerdict evaluate_pairing(const PairingAnnouncement& announcement, std::string_view own_ship_id,
                                std::string_view own_fingerprint, const PairingSecret& secret,
                                ReplayGuard& guard) {
    if (announcement.for_id != own_ship_id || announcement.for_par != own_fingerprint)
        return PairingVerdict::not_for_us;
    if (guard.seen(announcement.digest)) return PairingVerdict::replay;
    const auto expected = pairing_digest(secret, announcement);
    if (!expected || expected->size() != announcement.digest.size() ||
        CRYPTO_memcmp(expected->data(), announcement.digest.data(), expected->size()) != 0)
        return PairingVerdict::digest_mismatch;
    guard.store(announcement.digest);
    return PairingVerdict::accepted;
}

std::optional<std::map<std::string, std::string>> parse_installation_qr(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.remove_suffix(1);
    if (text.substr(0, 5) != "SHIP;") return std::nullopt;
    text.remove_prefix(5);
    std::map<std::string, std::string> fields;
    while (!text.empty()) {
        const auto end = text.find(';');
        const std::string_view field = text.substr(0, end);
        text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
        if (field == "ENDSHIP") break;
        const auto colon = field.find(':');
        if (colon == std::string_view::npos) continue;
        std::string key(field.substr(0, colon));
        for (auto& c : key)
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        std::string value(field.substr(colon + 1));
        // hupe1980/eebus prints the SKI (and PIN) in groups of four.
        if (key == "SKI" || key == "PIN" || key == "FPH256" || key == "SPSEC")
            value.erase(std::remove(value.begin(), value.end(), ' '), value.end());
        fields.try_emplace(std::move(key), std::move(value));
    }
    return fields;
}

std::string with_pairing_fields(std::string_view qr, std::string_view fingerprint,
                                const PairingSecret& secret) {
    const std::string fields =
        "FPH256:" + std::string(fingerprint) + ";SPSEC:" + hex_upper(secret.data(), secret.size()) + ";";
    const auto end = qr.rfind("ENDSHIP;");
    if (end == std::string_view::npos) return std::string(qr) + fields;
    return std::string(qr.substr(0, end)) + fields + std::string(qr.substr(end));
}

PairingSecret random_secret() {
    PairingSecret secret{};
    if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1)
        throw std::runtime_error("the system's random generator failed (RAND_bytes)");
    return secret;
}

std::string random_nonce() {
    const PairingSecret bytes = random_secret();
    return hex_upper(bytes.data(), bytes.size());
}

} // namespace ship::mdns
