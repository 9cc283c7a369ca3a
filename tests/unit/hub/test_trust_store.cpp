#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>
#include <sys/stat.h>
#include <system_error>

#include "hub/trust_store.hpp"
#include "util/atomic_file.hpp"

using namespace ship::hub;
namespace fs = std::filesystem;

namespace {

const std::string ski_a = "00112233445566778899aabbccddeeff00112233";
const std::string ski_b = "ffeeddccbbaa99887766554433221100ffeeddcc";

// A fresh directory per test, removed afterwards.
struct TempDir {
    TempDir() {
        std::random_device rd;
        path =
            fs::temp_directory_path() / ("shipd-trust-test-" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path path;
};

void write(const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
}

std::string read(const fs::path& path) {
    return ship::util::read_file(path).value_or("");
}

std::vector<fs::path> entries(const fs::path& dir) {
    std::vector<fs::path> out;
    for (auto& e : fs::directory_iterator(dir))
        out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

TEST_CASE("trust store: a missing file is an empty store, nothing written until a change", "[trust]") {
    TempDir dir;
    auto store = TrustStore::load(dir.path);
    CHECK(store.size() == 0);
    CHECK_FALSE(store.moved_aside());
    CHECK(entries(dir.path).empty());
}

TEST_CASE("trust store: round trip of SKIs, SHIP IDs and addresses", "[trust]") {
    TempDir dir;
    {
        auto store = TrustStore::load(dir.path);
        // Users type SKIs with spaces, dashes, upper case.
        CHECK(store.trust("00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF 00 11 22 33", "Wallbox-1"));
        CHECK(store.trust("FFEEDDCC-BBAA9988-77665544-33221100-FFEEDDCC"));
        CHECK(store.set_address(ski_a, PeerAddress{"fe80::1%eth0", 4712, "/ship/"}));
        CHECK(store.set_ship_id(ski_b, "HeatPump-7"));
        CHECK_FALSE(store.set_ship_id(ski_b, "HeatPump-7")); // unchanged: no write
        CHECK_FALSE(store.trust(ski_a));                     // already trusted
    }
    auto loaded = TrustStore::load(dir.path);
    REQUIRE(loaded.size() == 2);
    const TrustedPeer* a = loaded.find(ski_a);
    REQUIRE(a);
    CHECK(a->ski == ski_a);
    CHECK(a->ship_id == "Wallbox-1");
    REQUIRE(a->address);
    CHECK(*a->address == PeerAddress{"fe80::1%eth0", 4712, "/ship/"});
    const TrustedPeer* b = loaded.find("FFEEDDCCBBAA99887766554433221100FFEEDDCC");
    REQUIRE(b);
    CHECK(b->ship_id == "HeatPump-7");
    CHECK_FALSE(b->address);
    CHECK(loaded.peers().front().ski == ski_a); // ordered by SKI

    CHECK(loaded.untrust(ski_a));
    CHECK_FALSE(loaded.untrust(ski_a));
    CHECK_FALSE(TrustStore::load(dir.path).is_trusted(ski_a));
    CHECK(TrustStore::load(dir.path).is_trusted(ski_b));
}

TEST_CASE("trust store: an address or SHIP ID for an untrusted SKI changes nothing", "[trust]") {
    TempDir dir;
    auto store = TrustStore::load(dir.path);
    CHECK_FALSE(store.set_address(ski_a, PeerAddress{"192.0.2.1", 4711, "/ship/"}));
    CHECK_FALSE(store.set_ship_id(ski_a, "x"));
    CHECK(store.size() == 0);
    CHECK_THROWS_AS(store.trust("not a ski"), std::invalid_argument);
    CHECK_FALSE(store.is_trusted("not a ski"));
}

TEST_CASE("trust store: the file is 0600 and replaced whole", "[trust]") {
    TempDir dir;
    auto store = TrustStore::load(dir.path);
    for (int i = 0; i < 20; ++i) {
        store.trust(ski_a, "id-" + std::to_string(i));
        // Every version on disk is complete and loads; no temporary file is left behind.
        CHECK(TrustStore::load(dir.path).find(ski_a)->ship_id == "id-" + std::to_string(i));
        CHECK(entries(dir.path) == std::vector<fs::path>{"trust.json"});
    }
    struct stat st {};
    REQUIRE(::stat(store.path().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
}

TEST_CASE("trust store: a failed write leaves memory and disk as they were", "[trust]") {
    TempDir dir;
    auto store = TrustStore::load(dir.path);
    store.trust(ski_a, "first");
    const std::string before = read(store.path());
    // Make the rename over trust.json fail: swap the file for a non-empty directory (root ignores modes).
    fs::remove(store.path());
    fs::create_directory(store.path());
    write(store.path() / "keep", "x");
    CHECK_THROWS_AS(store.trust(ski_b, "second"), std::system_error);
    CHECK_FALSE(store.is_trusted(ski_b));
    CHECK(store.find(ski_a)->ship_id == "first");
    CHECK(entries(dir.path) == std::vector<fs::path>{"trust.json"}); // no partial or temporary file
    CHECK_FALSE(before.empty());
}

TEST_CASE("trust store: a corrupt file is an error and is never emptied", "[trust]") {
    TempDir dir;
    const fs::path file = dir.path / "trust.json";
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"{\"version\":1,\"peers\":[{\"ski\":\"00112233", "invalid JSON"},
        {"[]", "top level"},
        {"{\"version\":2,\"peers\":[]}", "version"},
        {"{\"version\":1,\"peers\":{}}", "peers"},
        {"{\"version\":1,\"peers\":[{\"ski\":\"xyz\"}]}", "peers[0]"},
        {"{\"version\":1,\"peers\":[{\"ski\":\"" + ski_a +
             "\",\"address\":{\"host\":\"h\",\"port\":70000,"
             "\"path\":\"/\"}}]}",
         "port"},
        {"{\"version\":1,\"peers\":[{\"ski\":\"" + ski_a + "\"},{\"ski\":\"" + ski_a + "\"}]}", "twice"},
        {"", "invalid JSON"},
    };
    for (const auto& [text, fault] : bad) {
        INFO(text);
        write(file, text);
        try {
            TrustStore::load(dir.path);
            FAIL("a corrupt trust file loaded");
        } catch (const TrustStoreError& e) {
            const std::string what = e.what();
            CHECK(what.find(file.string()) != std::string::npos);
            CHECK(what.find(fault) != std::string::npos);
        }
        CHECK(read(file) == text); // untouched
    }
}

TEST_CASE("trust store: a corrupt file is moved aside when the caller allows starting empty", "[trust]") {
    TempDir dir;
    const fs::path file = dir.path / "trust.json";
    const std::string garbage = "{\"version\":1,\"peers\":[ truncated";
    write(file, garbage);
    auto store = TrustStore::load(dir.path, CorruptTrustFile::start_empty);
    CHECK(store.size() == 0);
    REQUIRE(store.moved_aside());
    CHECK(store.moved_aside()->filename().string().starts_with("trust.json.corrupt-"));
    CHECK(read(*store.moved_aside()) == garbage);
    CHECK_FALSE(fs::exists(file));

    // A second corrupt file in the same second does not overwrite the first one kept aside.
    write(file, garbage + "2");
    auto again = TrustStore::load(dir.path, CorruptTrustFile::start_empty);
    REQUIRE(again.moved_aside());
    CHECK(*again.moved_aside() != *store.moved_aside());
    CHECK(read(*store.moved_aside()) == garbage);
    CHECK(read(*again.moved_aside()) == garbage + "2");

    again.trust(ski_a);
    CHECK(TrustStore::load(dir.path).is_trusted(ski_a));
}

// Hostile-suite finding: every kill -9 during a write left a `.trust.json.tmp-*` behind, for ever.
TEST_CASE("trust store: temporaries left by an interrupted write are removed at load, the file is kept",
          "[trust]") {
    TempDir dir;
    {
        auto store = TrustStore::load(dir.path);
        store.trust(ski_a);
    }
    for (const char* name : {".trust.json.tmp-1a2b3c", ".trust.json.tmp-zz"})
        std::ofstream(dir.path / name) << "{\"half";
    std::ofstream(dir.path / ".other.tmp-1") << "not ours";

    auto store = TrustStore::load(dir.path);
    CHECK(store.is_trusted(ski_a));
    CHECK_FALSE(fs::exists(dir.path / ".trust.json.tmp-1a2b3c"));
    CHECK_FALSE(fs::exists(dir.path / ".trust.json.tmp-zz"));
    CHECK(fs::exists(dir.path / ".other.tmp-1"));
}
