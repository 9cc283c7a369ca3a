// Durable state files: replaced whole, owner-only, no temporary files left behind whatever happens.
#include <catch2/catch.hpp>

#include "../tls/tls_test_support.hpp"
#include "util/atomic_file.hpp"

#include <cstdlib>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace fs = std::filesystem;
using ship::util::ensure_private_dir;
using ship::util::read_file;
using ship::util::write_file_atomic;

namespace {

using tls_test::mode_of;
using tls_test::ScopedUmask;
using tls_test::TempDir;

std::size_t entries_in(const fs::path& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir))
        ++n;
    return n;
}

} // namespace

TEST_CASE("write_file_atomic replaces the contents whole", "[util][atomic_file]") {
    TempDir dir;
    const auto file = dir.path / "trust.json";
    write_file_atomic(file, std::string(10000, 'a'));
    write_file_atomic(file, "short");
    CHECK(read_file(file) == std::optional<std::string>("short"));
    write_file_atomic(file, "");
    CHECK(read_file(file) == std::optional<std::string>(""));
    CHECK(entries_in(dir.path) == 1);
}

TEST_CASE("write_file_atomic keeps binary contents exactly", "[util][atomic_file]") {
    TempDir dir;
    const auto file = dir.path / "blob";
    std::string data;
    for (int i = 0; i < 3 * 8192 + 7; ++i)
        data.push_back(static_cast<char>(i % 256));
    write_file_atomic(file, data);
    CHECK(read_file(file) == std::optional<std::string>(data));
}

TEST_CASE("write_file_atomic creates files 0600 even under a permissive umask", "[util][atomic_file]") {
    TempDir dir;
    ScopedUmask umask(0);
    const auto file = dir.path / "key.pem";
    write_file_atomic(file, "secret");
    CHECK(mode_of(file) == 0600);

    SECTION("an existing world-readable file becomes 0600 when replaced") {
        REQUIRE(::chmod(file.c_str(), 0644) == 0);
        write_file_atomic(file, "secret 2");
        CHECK(mode_of(file) == 0600);
    }
}

TEST_CASE("write_file_atomic leaves no temporary file when the rename fails", "[util][atomic_file]") {
    TempDir dir;
    const auto target = dir.path / "occupied";
    fs::create_directory(target);
    fs::create_directory(target / "child"); // a non-empty directory cannot be replaced by a file

    try {
        write_file_atomic(target, "x");
        FAIL("writing over a directory must throw");
    } catch (const std::system_error& e) {
        const std::string what = e.what();
        CHECK(what.find("rename") != std::string::npos);
        CHECK(what.find(target.string()) != std::string::npos);
    }
    CHECK(entries_in(dir.path) == 1); // only the directory itself
    CHECK(fs::is_directory(target));
}

TEST_CASE("write_file_atomic names the path when the directory does not exist", "[util][atomic_file]") {
    TempDir dir;
    const auto file = dir.path / "missing" / "state.json";
    try {
        write_file_atomic(file, "x");
        FAIL("writing into a missing directory must throw");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find(file.string()) != std::string::npos);
        CHECK(e.code() == std::errc::no_such_file_or_directory);
    }
    CHECK(entries_in(dir.path) == 0);
}

TEST_CASE("write_file_atomic in a relative path uses the current directory", "[util][atomic_file]") {
    TempDir dir;
    const auto old = fs::current_path();
    fs::current_path(dir.path);
    write_file_atomic("relative.txt", "here");
    fs::current_path(old);
    CHECK(read_file(dir.path / "relative.txt") == std::optional<std::string>("here"));
}

TEST_CASE("read_file of a missing file is nullopt, other failures throw", "[util][atomic_file]") {
    TempDir dir;
    CHECK_FALSE(read_file(dir.path / "nope").has_value());
    CHECK_THROWS_AS(read_file(dir.path), std::system_error); // a directory cannot be read as a file
}

TEST_CASE("ensure_private_dir creates missing directories 0700", "[util][atomic_file]") {
    TempDir dir;
    ScopedUmask umask(0);
    const auto state = dir.path / "var" / "lib" / "shipd";
    ensure_private_dir(state);
    CHECK(fs::is_directory(state));
    CHECK(mode_of(state) == 0700);
    CHECK(mode_of(dir.path / "var") == 0700);

    SECTION("a second call is fine and a trailing slash is accepted") {
        ensure_private_dir(state);
        ensure_private_dir(dir.path / "other/");
        CHECK(mode_of(dir.path / "other") == 0700);
    }
    SECTION("a regular file in the way is an error") {
        write_file_atomic(dir.path / "file", "x");
        CHECK_THROWS_AS(ensure_private_dir(dir.path / "file"), std::system_error);
        CHECK_THROWS_AS(ensure_private_dir(dir.path / "file" / "sub"), std::system_error);
    }
}
