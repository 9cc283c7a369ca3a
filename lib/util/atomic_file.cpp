// Atomic replacement: readers see the old file or the new one, never a torn mix, and a crash after return
// cannot lose the new contents (the rename itself is made durable by syncing the directory).
#include "util/atomic_file.hpp"

#include "util/file_descriptor.hpp"

#include <cerrno>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace ship::util {
namespace {

std::string random_suffix() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    std::uint64_t v = rng();
    for (int i = 0; i < 16; ++i, v >>= 4)
        out.push_back(digits[v & 0xf]);
    return out;
}

void write_all(int fd, std::string_view contents, const std::filesystem::path& path) {
    while (!contents.empty()) {
        const ssize_t n = ::write(fd, contents.data(), contents.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(errno, "write", path);
        }
        contents.remove_prefix(static_cast<std::size_t>(n));
    }
}

std::filesystem::path directory_of(const std::filesystem::path& path) {
    auto dir = path.parent_path();
    return dir.empty() ? std::filesystem::path(".") : dir;
}

} // namespace

void write_file_atomic(const std::filesystem::path& path, std::string_view contents) {
    const auto dir = directory_of(path);

    // The name carries the target's name so a leftover (after a crash) is recognisable; O_EXCL makes it ours.
    std::filesystem::path tmp;
    int raw = -1;
    for (int attempt = 0; raw < 0; ++attempt) {
        tmp = dir / ("." + path.filename().string() + ".tmp-" + random_suffix());
        raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (raw < 0 && (errno != EEXIST || attempt >= 16))
            throw_errno(errno, "create temporary file for", path);
    }

    try {
        UniqueFd fd(raw);
        // open()'s mode is masked by the umask; a permissive umask must still not widen it, a strict one
        // must not narrow it below owner read/write.
        if (::fchmod(fd.get(), 0600) != 0) throw_errno(errno, "chmod temporary file for", path);
        write_all(fd.get(), contents, path);
        if (::fsync(fd.get()) != 0) throw_errno(errno, "fsync temporary file for", path);
        if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno(errno, "rename temporary file over", path);
    } catch (...) {
        ::unlink(tmp.c_str());
        throw;
    }

    fsync_directory_of(path, "writing");
}

std::size_t remove_stale_temporaries(const std::filesystem::path& path) {
    const std::string prefix = "." + path.filename().string() + ".tmp-";
    std::size_t removed = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(directory_of(path), ec)) {
        const std::string name = entry.path().filename().string();
        if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0 &&
            std::filesystem::remove(entry.path(), ec))
            ++removed;
    }
    return removed;
}

std::optional<std::string> read_file(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw_errno(errno, "open", path);
    }
    std::string out;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_errno(errno, "read", path);
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

void ensure_private_dir(const std::filesystem::path& dir) {
    // Trailing separators would make parent_path() return the directory itself.
    auto target = dir.lexically_normal();
    if (!target.has_filename() && target.has_parent_path()) target = target.parent_path();
    if (target.empty()) return;

    struct stat st {};
    if (::stat(target.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) throw_errno(ENOTDIR, "create directory", target);
        return; // an existing directory keeps the mode its owner chose
    }
    if (errno != ENOENT) throw_errno(errno, "stat", target);

    if (target.has_parent_path() && target.parent_path() != target) ensure_private_dir(target.parent_path());
    if (::mkdir(target.c_str(), 0700) != 0) {
        if (errno == EEXIST) return; // created concurrently
        throw_errno(errno, "create directory", target);
    }
    // mkdir's mode is masked by the umask; one that strips owner bits would leave the directory unusable.
    if (::chmod(target.c_str(), 0700) != 0) throw_errno(errno, "chmod 0700", target);
}

} // namespace ship::util
