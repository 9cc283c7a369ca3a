// The peers the user trusts (SKI, known SHIP ID, last known address, learned double-connection rule) and the
// SKIs the user blocked, in memory at once on every change and made durable off the owner's thread (journal +
// snapshot in the state dir, 0600); a corrupt file is never emptied.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "hub/double_connection.hpp"
#include "hub/peer_address.hpp"

namespace ship::hub {

struct TrustedPeer {
    std::string ski;     // canonical 40-hex form
    std::string ship_id; // empty until learned from the peer's accessMethods (or given at trust time)
    std::optional<PeerAddress> address; // where a dial last completed the handshake (tried first next time)
    // How the peer settles a double connection, learned from what it did (hub/peer_rules.hpp); nullopt
    // until it showed us.
    std::optional<DoubleConnectionRule> double_connection;

    bool operator==(const TrustedPeer&) const = default;
};

// trust.json or trust.journal could not be understood. what() names the file and the fault.
class TrustStoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class CorruptTrustFile {
    fail, // throw TrustStoreError and leave the files exactly as they are (the daemon exits; the user fixes
          // it)
    // rename trust.json and trust.journal to <name>.corrupt-<UTC time> and start with no trusted peers
    start_empty,
};

// Owner-thread confined (the strand). SKI arguments are taken as users type them (ship::normalize_ski).
//
// Persistence (lib/hub/README.md, "Trust store"): `trust.json` is a snapshot of every peer plus the journal
// sequence it covers; `trust.journal` holds one JSON record per line, each with a sequence number and the
// full value of one peer (or its removal), appended and fdatasync'ed by a DiskWriter worker. Changes made
// while a write is in flight go out together in the next one. When the journal grows past compaction_bound(),
// the next write is a new snapshot instead (atomic replace) and the journal is emptied.
class TrustStore {
public:
    static constexpr std::string_view file_name = "trust.json";
    static constexpr std::string_view journal_name = "trust.journal";
    // The journal is compacted once it would hold more records than max(this, 2 × peers).
    static constexpr std::size_t min_compaction_bound = 256;

    // Hands a closure to the owner's thread (net::Strand::post in the daemon); thread-safe; may drop closures
    // once the owner is stopping (what is not yet on disk is then written when the store is destroyed).
    using Post = std::function<void(std::function<void()>)>;
    using Durable = std::function<void(std::optional<std::string> error)>;

    // Snapshot, then the journal records newer than it. Missing files are an empty store. A torn last journal
    // line (no newline, or not a record) was never acknowledged and is ignored. I/O errors throw
    // std::system_error; files that are not valid trust data are handled as `on_corrupt` says. Synchronous:
    // call it before the owner's loop runs.
    static TrustStore load(const std::filesystem::path& state_dir, Post post,
                           CorruptTrustFile on_corrupt = CorruptTrustFile::fail);

    // Writes what is not yet on disk (bounded by DiskWriter::default_drain_bound), so a clean stop loses
    // nothing; `when_durable` callbacks still waiting are dropped unrun.
    ~TrustStore();
    TrustStore(TrustStore&&) noexcept;
    TrustStore& operator=(TrustStore&&) noexcept;

    const std::filesystem::path& path() const noexcept;
    const std::filesystem::path& journal_path() const noexcept;
    // Where a corrupt file was moved by CorruptTrustFile::start_empty (to log it), else nullopt.
    const std::optional<std::filesystem::path>& moved_aside() const noexcept;

    bool is_trusted(std::string_view ski) const;
    const TrustedPeer* find(std::string_view ski) const; // null if not trusted (or not a SKI)
    std::vector<TrustedPeer> peers() const;              // ordered by SKI
    std::size_t size() const noexcept;

    // Mutators change memory at once and return whether anything changed; the write to disk follows on the
    // disk writer and never blocks or throws here (see when_durable). An invalid SKI throws
    // std::invalid_argument; set_* on an untrusted SKI change nothing.
    bool trust(std::string_view ski, std::string_view ship_id = {});
    bool untrust(std::string_view ski);
    bool set_ship_id(std::string_view ski, std::string_view ship_id);
    bool set_address(std::string_view ski, const PeerAddress& address);
    bool set_double_connection_rule(std::string_view ski, DoubleConnectionRule rule);

    // Blocked SKIs (trusted or not; blocking keeps trust, untrusting keeps the block). Persisted like trust:
    // a "blocked" flag on the peer's record, an op "block" record for an untrusted one.
    bool is_blocked(std::string_view ski) const;
    std::vector<std::string> blocked() const; // ordered
    bool set_blocked(std::string_view ski, bool blocked);

    // `done` runs on the owner's thread (through Post, never inside this call) once every change made before
    // this call is on disk, with nullopt; or with the error text if a write failed. A failed write fails
    // every waiter; its changes stay in memory and are written again with the next change or when_durable
    // call. Callbacks run in the order they were registered.
    void when_durable(Durable done);

    // For tests and diagnostics.
    struct Writes {
        std::uint64_t journal_appends = 0; // successful journal appends
        std::uint64_t snapshots = 0;       // successful compactions (trust.json replaced)
        std::uint64_t failed = 0;          // writes that failed
    };
    Writes writes() const noexcept;
    std::size_t
    journal_records() const noexcept; // records in the current journal file, as far as acknowledged
    std::size_t compaction_bound() const noexcept;
    bool write_in_flight() const noexcept;

    struct State;

private:
    explicit TrustStore(std::shared_ptr<State> state);
    // Applies `change` to a copy of a trusted peer and records it if it reports a change. False if not
    // trusted.
    bool update_trusted(std::string_view ski, const std::function<bool(TrustedPeer&)>& change);

    // Shared so that results the disk writer posts can tell whether the store still exists (weak_ptr).
    std::shared_ptr<State> state_;
};

} // namespace ship::hub
