// The peers the user trusts: SKI, known SHIP ID and last known address, kept in <state_dir>/trust.json.
// Every change is on disk (atomic replace, 0600) before the call returns; a corrupt file is never emptied.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "hub/peer_address.hpp"

namespace ship::hub {

struct TrustedPeer {
    std::string ski;     // canonical 40-hex form
    std::string ship_id; // empty until learned from the peer's accessMethods (or given at trust time)
    std::optional<PeerAddress> address;

    bool operator==(const TrustedPeer&) const = default;
};

// trust.json could not be understood. what() names the file and the fault.
class TrustStoreError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class CorruptTrustFile {
    fail, // throw TrustStoreError and leave the file exactly as it is (the daemon exits; the user fixes it)
    start_empty, // rename it to trust.json.corrupt-<UTC time> and start with no trusted peers
};

// Strand-confined. SKI arguments are taken as users type them (ship::normalize_ski).
class TrustStore {
public:
    static constexpr std::string_view file_name = "trust.json";

    // A missing file is an empty store. I/O errors throw std::system_error; a file that is not valid trust
    // JSON is handled as `on_corrupt` says.
    static TrustStore load(const std::filesystem::path& state_dir,
                           CorruptTrustFile on_corrupt = CorruptTrustFile::fail);

    const std::filesystem::path& path() const noexcept { return path_; }
    // Where a corrupt file was moved by CorruptTrustFile::start_empty (to log it), else nullopt.
    const std::optional<std::filesystem::path>& moved_aside() const noexcept { return moved_aside_; }

    bool is_trusted(std::string_view ski) const;
    const TrustedPeer* find(std::string_view ski) const; // null if not trusted (or not a SKI)
    std::vector<TrustedPeer> peers() const;              // ordered by SKI
    std::size_t size() const noexcept { return peers_.size(); }

    // Mutators write the file before returning and return whether anything changed. If the write fails they
    // throw std::system_error and the store keeps its previous contents. An invalid SKI throws
    // std::invalid_argument; set_* on an untrusted SKI change nothing.
    bool trust(std::string_view ski, std::string_view ship_id = {});
    bool untrust(std::string_view ski);
    bool set_ship_id(std::string_view ski, std::string_view ship_id);
    bool set_address(std::string_view ski, const PeerAddress& address);

private:
    using Peers = std::map<std::string, TrustedPeer, std::less<>>;

    explicit TrustStore(std::filesystem::path path)
        : path_(std::move(path)) {}
    void commit(Peers next);
    // Applies `change` to a copy of a trusted peer; writes if it reports a change. False if not trusted.
    bool update_trusted(std::string_view ski, const std::function<bool(TrustedPeer&)>& change);

    std::filesystem::path path_;
    std::optional<std::filesystem::path> moved_aside_;
    Peers peers_;
};

} // namespace ship::hub
