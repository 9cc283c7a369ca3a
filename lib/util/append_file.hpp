// An append-only file made durable append by append: append() returns once the bytes are on disk
// (fdatasync, and the directory entry once), and a failed append is cut back so no half of it stays (0600).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

namespace ship::util {

// One user at a time (the disk writer's worker in the daemon); it may be handed between threads with a
// happens-before edge in between (the writer's queue gives one). The file is open only during a call: at
// rest the process holds no descriptor for it.
class AppendOnlyFile {
public:
    // `good_size`: how many leading bytes of the existing file are valid (what its reader accepted, 0 for a
    // missing file). Anything after them (a torn last record) is cut off by the first append or reset.
    AppendOnlyFile(std::filesystem::path path, std::uint64_t good_size);
    AppendOnlyFile(const AppendOnlyFile&) = delete;
    AppendOnlyFile& operator=(const AppendOnlyFile&) = delete;

    // Writes `bytes` after the good prefix and makes them durable. Creates the file (0600) if missing. On
    // failure throws std::system_error naming the path and step; the file is cut back to its previous size
    // (or that is retried by the next call), so a later append never follows a fragment.
    void append(std::string_view bytes);
    // Empties the file durably (ftruncate + fsync); a missing file stays missing. Throws std::system_error.
    void reset();

    const std::filesystem::path& path() const noexcept { return path_; }
    std::uint64_t size() const noexcept { return size_; } // the good prefix

private:
    int open(bool create); // -1 if missing and !create
    void cut_tail(int fd);

    std::filesystem::path path_;
    std::uint64_t size_ = 0;
    bool tail_unknown_ = true;  // bytes after size_ may exist (at start, after a failed write)
    bool entry_durable_ = true; // false after we created the file until its directory has been synced
};

} // namespace ship::util
