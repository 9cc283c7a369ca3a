// The SHIP Pairing Service (TS 1.0.0, `_shippairing._tcp`) without I/O: the TXT record of an addCu request
// byte-exact in the spec's order, its strict reading, the HMAC-SHA256 digest over the `key=value;` string,
// the replay guard (a ring of accepted digests), the evaluation in the spec's order, and the QR fields it
// needs.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ship::mdns {

inline constexpr std::string_view pairing_service_type = "_shippairing._tcp";
inline constexpr std::size_t pairing_secret_bytes = 16; // SPSEC: 128 bit (OpenEEBUS and ship-go's QR)
inline constexpr std::size_t pairing_nonce_bytes = 16;  // trustNonce: 128 bit
// §11.2: at least ten accepted digests are remembered (ship-go, OpenEEBUS use ten).
inline constexpr std::size_t replay_guard_size = 10;
// Where the announcement says the service listens: nothing does, and receivers must not use it (§5.3).
inline constexpr std::uint16_t pairing_announcement_port = 1;

using PairingSecret = std::array<std::uint8_t, pairing_secret_bytes>;

// An addCu request as its TXT record holds it. The constant keys (txtvers=1, parType=fpSha256, type=addCu,
// alg=hmacSha256) are not stored: encode writes them, parse insists on them.
struct PairingAnnouncement {
    std::string for_id;                    // devA's SHIP ID (QR `ID`)
    std::string for_par;                   // devA's certificate fingerprint (QR `FPH256`), 64 upper-case hex
    std::string trust_id;                  // devZ's own SHIP ID
    std::string trust_par;                 // devZ's certificate fingerprint, 64 upper-case hex
    std::string trust_curve = "secp256r1"; // secp256r1 | brainpoolP256r1 | brainpoolP384r1
    std::string trust_nonce;               // 32 upper-case hex, fresh per request
    std::string digest;                    // 64 upper-case hex (empty until signed)

    bool operator==(const PairingAnnouncement&) const = default;
};

// M (§7.4): the ten fields before `digest`, each `key=value;`, in the record's order, UTF-8, no spaces.
std::string pairing_digest_message(const PairingAnnouncement& announcement);
// HMAC-SHA256 with key K = secret ‖ nonce (both as raw bytes, §7.3) over M: 64 upper-case hex. nullopt if
// the nonce is not 32 hex digits.
std::optional<std::string> pairing_digest(const PairingSecret& secret,
                                          const PairingAnnouncement& announcement);
// A copy with `digest` computed (a nonce must be set).
PairingAnnouncement sign_pairing(PairingAnnouncement announcement, const PairingSecret& secret);

// The eleven TXT strings, `txtvers` first, exactly as Table 1 of §5.4 orders them.
std::vector<std::string> encode_pairing_txt(const PairingAnnouncement& announcement);

struct PairingTxtResult {
    std::optional<PairingAnnouncement> announcement;
    std::string error; // when empty: names the key and what is wrong with it
};
// Strict, as OpenEEBUS and hupe1980/eebus read it: keys matched exactly (camelCase), `txtvers=1` first,
// unknown keys ignored, the first of a repeated key wins (the digest was computed over that one), a string
// without '=' skipped; the constants must hold their one value, IDs non-empty, fingerprints 64 and the digest
// 64 upper-case hex, the nonce 32 upper-case hex (lower case is invalid, not merely different).
PairingTxtResult parse_pairing_txt(const std::vector<std::string>& txt);

// The replay guard (§11): accepted digests in a ring of `size` entries. Only verified digests are stored,
// so forged records cannot push real ones out. `next` is 1-based as §11.3 numbers the entries (0: nothing
// stored yet); the newest entry is next − 1.
class ReplayGuard {
public:
    struct Entry {
        std::string alg = "hmacSha256";
        std::string digest;
        bool operator==(const Entry&) const = default;
    };
    explicit ReplayGuard(std::size_t size = replay_guard_size);

    bool seen(std::string_view digest) const;
    void store(std::string_view digest);

    std::size_t size() const noexcept { return entries_.size(); }
    std::size_t next() const noexcept { return next_; }
    const std::vector<std::optional<Entry>>& entries() const noexcept { return entries_; }
    // Restores a persisted ring; false (and unchanged) if it does not fit this size or `next` is out of
    // range.
    bool restore(std::vector<std::optional<Entry>> entries, std::size_t next);

private:
    std::vector<std::optional<Entry>> entries_;
    std::size_t next_ = 0;
};

enum class PairingVerdict {
    accepted,        // addressed to us, new, digest verified: stored in the guard
    not_for_us,      // forId or forPar names another node (normal with several energy managers)
    replay,          // its digest was accepted before
    digest_mismatch, // wrong secret (a mistyped QR) or a forged record
};
std::string_view to_string(PairingVerdict verdict); // "accepted", "not-for-us", "replay", "digest-mismatch"

// §9 in the spec's order, as OpenEEBUS and hupe1980/eebus do it: relevance (forId and forPar), then replay,
// then the digest (constant time), then store. `own_fingerprint` upper-case hex.
PairingVerdict evaluate_pairing(const PairingAnnouncement& announcement, std::string_view own_ship_id,
                                std::string_view own_fingerprint, const PairingSecret& secret,
                                ReplayGuard& guard);

// The installation QR text, split: `SHIP;KEY:value;...;ENDSHIP;` → KEY → value (keys upper-cased, split at
// the first ':' only — SHIP IDs hold colons — unknown keys kept, spaces removed from SKI). nullopt if it does
// not start with `SHIP;`. A missing `ENDSHIP;` is accepted (hupe1980/eebus does).
std::optional<std::map<std::string, std::string>> parse_installation_qr(std::string_view text);
// `qr` with `FPH256:<fingerprint>;SPSEC:<secret>;` put just before `ENDSHIP;` (ship-go's field order).
std::string with_pairing_fields(std::string_view qr, std::string_view fingerprint,
                                const PairingSecret& secret);

std::string hex_upper(const std::uint8_t* data, std::size_t size);
// Case-insensitive; nullopt unless exactly 2 × `bytes` hex digits.
std::optional<std::vector<std::uint8_t>> parse_hex(std::string_view text, std::size_t bytes);
bool is_upper_hex(std::string_view text, std::size_t digits);

// 16 bytes from the system's CSPRNG (OpenSSL RAND_bytes); throws std::runtime_error if it fails.
PairingSecret random_secret();
std::string random_nonce(); // 32 upper-case hex

} // namespace ship::mdns
