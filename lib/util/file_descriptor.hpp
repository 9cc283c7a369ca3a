// What the durable-file helpers share: a file descriptor closed on scope exit, errno as an exception that
// names the step and the file, and the fsync of a file's directory.
#pragma once

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>

#include <fcntl.h>
#include <unistd.h>

namespace ship::util {

// Closes on scope exit. A close error after fsync/fdatasync says nothing about the data, so it is ignored.
class UniqueFd {
public:
    explicit UniqueFd(int fd)
        : fd_(fd) {}
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() {
        if (fd_ >= 0) ::close(fd_);
    }
    int get() const { return fd_; }

private:
    int fd_;
};

[[noreturn]] inline void throw_errno(int err, const std::string& step, const std::filesystem::path& path) {
    throw std::system_error(err, std::generic_category(), step + " '" + path.string() + "'");
}

// Makes a new or renamed directory entry of `path` durable: fsync of the directory that holds it. `after`
// names what was done ("writing", "creating") for the error text.
inline void fsync_directory_of(const std::filesystem::path& path, const std::string& after) {
    auto dir = path.parent_path();
    if (dir.empty()) dir = ".";
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) throw_errno(errno, "open directory to fsync after " + after, path);
    if (::fsync(fd.get()) != 0) throw_errno(errno, "fsync directory after " + after, path);
}

} // namespace ship::util
