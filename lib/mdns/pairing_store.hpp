// The SHIP Pairing Service's durable state, <state_dir>/pairing.json (0600, replaced atomically, written off
// the owner's thread by a DiskWriter): this node's secret (SPSEC), the replay guard, and the device the last
// accepted request admitted. The guard survives restarts so a recorded announcement cannot be replayed.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "mdns/pairing_service.hpp"
#include "util/disk_writer.hpp"

namespace ship::mdns {

// Owner-thread confined (the strand).
class PairingStore {
public:
    static constexpr std::string_view file_name = "pairing.json";
    using Post = util::DiskWriter::Post;
    using Saved = std::function<void(std::optional<std::string> error)>;

    struct Paired {
        std::string fingerprint; // 64 upper-case hex (the announcement's trustPar)
        std::string ship_id;     // its trustId
        std::string ski;         // empty until it connected and proved its certificate
        bool operator==(const Paired&) const = default;
    };

    // Reads the file. Without one, a secret is drawn and the file written at once, synchronously: call it
    // before the loop runs (like the certificate, the secret is printed in the QR text and must not change).
    // Throws std::runtime_error naming the file and the fault; never replaces a file it cannot read.
    static PairingStore load(const std::filesystem::path& state_dir, Post post);

    ~PairingStore(); // writes a pending change (bounded by DiskWriter's drain)
    PairingStore(PairingStore&&) noexcept;
    PairingStore& operator=(PairingStore&&) noexcept;

    const std::filesystem::path& path() const noexcept;
    const PairingSecret& secret() const noexcept;
    ReplayGuard& guard() noexcept;
    const std::optional<Paired>& paired() const noexcept;
    void set_paired(std::optional<Paired> paired);

    // Writes the state as it is now. One write at a time; saves meanwhile become one more write with all of
    // them. `done` runs on the owner's thread once a write covering this call finished (nullopt or the
    // error).
    void save(Saved done = {});
    std::uint64_t writes() const noexcept; // completed writes, for tests

    struct State;

private:
    explicit PairingStore(std::shared_ptr<State> state);
    std::shared_ptr<State> state_;
};

// The file's text for a state, and back (for the store and its tests). parse throws std::runtime_error.
std::string serialize_pairing_state(const PairingSecret& secret, const ReplayGuard& guard,
                                    const std::optional<PairingStore::Paired>& paired);
void parse_pairing_state(std::string_view text, PairingSecret& secret, ReplayGuard& guard,
                         std::optional<PairingStore::Paired>& paired);

} // namespace ship::mdns
