// Durable state on disk: a file is replaced whole or not at all, readable only by its owner.
// write temp (0600) → fsync → rename over the target → fsync the directory.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace ship::util {

// Throws std::system_error naming the path and the failing step.
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);

// Removes the temporaries write_file_atomic(path) left behind when the process died mid-write (kill -9,
// power loss); returns how many. Call at start, before any write to `path`, by its only writer.
std::size_t remove_stale_temporaries(const std::filesystem::path& path);

// nullopt if the file does not exist; throws std::system_error on any other failure.
std::optional<std::string> read_file(const std::filesystem::path& path);

// Creates the directory (and parents) with mode 0700 if missing; throws std::system_error.
void ensure_private_dir(const std::filesystem::path& dir);

} // namespace ship::util
