// Append, fdatasync, and on any failure cut back to the last good size: the file only ever grows by whole
// appends that reached the disk (a crash can still leave a fragment after them, which the reader ignores).
#include "util/append_file.hpp"

#include "util/file_descriptor.hpp"

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace ship::util {

AppendOnlyFile::AppendOnlyFile(std::filesystem::path path, std::uint64_t good_size)
    : path_(std::move(path))
    , size_(good_size) {}

int AppendOnlyFile::open(bool create) {
    int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd >= 0) return fd;
    if (errno != ENOENT) throw_errno(errno, "open", path_);
    if (!create) return -1;
    fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) throw_errno(errno, "create", path_);
    // A new file has no prefix to keep, whatever the reader saw before it went missing.
    size_ = 0;
    tail_unknown_ = false;
    entry_durable_ = false;
    // open()'s mode is masked by the umask; whatever it is, the file is the owner's alone.
    if (::fchmod(fd, 0600) != 0) {
        const int err = errno;
        ::close(fd);
        throw_errno(err, "chmod", path_);
    }
    return fd;
}

void AppendOnlyFile::cut_tail(int fd) {
    if (!tail_unknown_) return;
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw_errno(errno, "stat", path_);
    const auto actual = static_cast<std::uint64_t>(st.st_size);
    if (actual > size_ && ::ftruncate(fd, static_cast<off_t>(size_)) != 0)
        throw_errno(errno, "cut the torn end of", path_);
    if (actual < size_) size_ = actual; // shortened behind our back: append after what is there
    tail_unknown_ = false;
}

void AppendOnlyFile::append(std::string_view bytes) {
    const UniqueFd fd(open(true));
    cut_tail(fd.get());
    try {
        std::uint64_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::pwrite(fd.get(), bytes.data() + done, bytes.size() - done,
                                       static_cast<off_t>(size_ + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                throw_errno(errno, "write", path_);
            }
            done += static_cast<std::uint64_t>(n);
        }
        if (::fdatasync(fd.get()) != 0) throw_errno(errno, "fdatasync", path_);
        if (!entry_durable_) {
            fsync_directory_of(path_, "creating");
            entry_durable_ = true;
        }
    } catch (...) {
        // Whatever part of this append reached the file must not stay in front of the next one. If even
        // the cut fails, the next call tries it again before writing.
        tail_unknown_ = ::ftruncate(fd.get(), static_cast<off_t>(size_)) != 0;
        throw;
    }
    size_ += bytes.size();
}

void AppendOnlyFile::reset() {
    const UniqueFd fd(open(false));
    if (fd.get() < 0) {
        size_ = 0;
        tail_unknown_ = false;
        return;
    }
    if (::ftruncate(fd.get(), 0) != 0 || ::fsync(fd.get()) != 0) {
        tail_unknown_ = true;
        throw_errno(errno, "empty", path_);
    }
    size_ = 0;
    tail_unknown_ = false;
}

} // namespace ship::util
