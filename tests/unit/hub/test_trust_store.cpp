#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sys/stat.h>
#include <system_error>

#include "../util/owner_queue.hpp"
#include "hub/trust_store.hpp"
#include "util/atomic_file.hpp"

using namespace ship::hub;
using ship::test::OwnerQueue;
namespace fs = std::filesystem;

namespace {

const std::string ski_a = "00112233445566778899aabbccddeeff00112233";
const std::string ski_b = "ffeeddccbbaa99887766554433221100ffeeddcc";
const std::string ski_c = "cccccccccccccccccccccccccccccccccccccccc";

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

std::size_t lines(const fs::path& path) {
    const std::string text = read(path);
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// Waits (running the owner's queue) until every change made so far is on disk; returns the write's error.
std::optional<std::string> settle(TrustStore& store, OwnerQueue& owner) {
    bool called = false;
    std::optional<std::string> error;
    store.when_durable([&](std::optional<std::string> e) {
        called = true;
        error = std::move(e);
    });
    REQUIRE(owner.run_until([&] { return called; }));
    return error;
}

// What a restarted daemon would read. Only while no write of another store on `dir` is in flight.
std::vector<TrustedPeer> reload(const fs::path& dir) {
    OwnerQueue owner;
    return TrustStore::load(dir, owner.post()).peers();
}

std::string ski_number(int n) {
    char buffer[41];
    std::snprintf(buffer, sizeof buffer, "%040x", n);
    return buffer;
}

// A journal record line as shipd writes it.
std::string put(std::uint64_t seq, const std::string& ski, const std::string& ship_id = "") {
    return "{\"seq\":" + std::to_string(seq) + ",\"op\":\"put\",\"ski\":\"" + ski + "\",\"shipId\":\"" +
           ship_id + "\"}\n";
}

std::string remove(std::uint64_t seq, const std::string& ski) {
    return "{\"seq\":" + std::to_string(seq) + ",\"op\":\"remove\",\"ski\":\"" + ski + "\"}\n";
}

std::string snapshot(std::uint64_t sequence, const std::vector<std::pair<std::string, std::string>>& peers) {
    std::string text = "{\"version\":1,\"sequence\":" + std::to_string(sequence) + ",\"peers\":[";
    for (std::size_t i = 0; i < peers.size(); ++i)
        text += std::string(i ? "," : "") + "{\"ski\":\"" + peers[i].first + "\",\"shipId\":\"" +
                peers[i].second + "\"}";
    return text + "]}\n";
}

} // namespace

TEST_CASE("trust store: a missing file is an empty store, nothing written until a change", "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    auto store = TrustStore::load(dir.path, owner.post());
    CHECK(store.size() == 0);
    CHECK_FALSE(store.moved_aside());
    CHECK_FALSE(settle(store, owner));
    CHECK(entries(dir.path).empty());
    store.trust(ski_a);
    CHECK_FALSE(settle(store, owner));
    CHECK(entries(dir.path) == std::vector<fs::path>{"trust.journal"});
}

TEST_CASE("trust store: round trip of SKIs, SHIP IDs and addresses", "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    {
        auto store = TrustStore::load(dir.path, owner.post());
        // Users type SKIs with spaces, dashes, upper case.
        CHECK(store.trust("00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF 00 11 22 33", "Wallbox-1"));
        CHECK(store.trust("FFEEDDCC-BBAA9988-77665544-33221100-FFEEDDCC"));
        CHECK(store.set_address(ski_a, PeerAddress{"fe80::1%eth0", 4712, "/ship/"}));
        CHECK(store.set_ship_id(ski_b, "HeatPump-7"));
        CHECK_FALSE(store.set_ship_id(ski_b, "HeatPump-7")); // unchanged: nothing to write
        CHECK_FALSE(store.trust(ski_a));                     // already trusted
        CHECK_FALSE(settle(store, owner));
    }
    auto loaded = TrustStore::load(dir.path, owner.post());
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
    CHECK_FALSE(settle(loaded, owner));
    const auto after = reload(dir.path);
    REQUIRE(after.size() == 1);
    CHECK(after.front().ski == ski_b);
}

TEST_CASE("trust store: an address or SHIP ID for an untrusted SKI changes nothing", "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    auto store = TrustStore::load(dir.path, owner.post());
    CHECK_FALSE(store.set_address(ski_a, PeerAddress{"192.0.2.1", 4711, "/ship/"}));
    CHECK_FALSE(store.set_ship_id(ski_a, "x"));
    CHECK(store.size() == 0);
    CHECK_THROWS_AS(store.trust("not a ski"), std::invalid_argument);
    CHECK_FALSE(store.is_trusted("not a ski"));
    CHECK_FALSE(store.write_in_flight());
    CHECK(owner.run_ready() == 0); // nothing was scheduled
}

TEST_CASE("trust store: mutators change memory at once; the disk follows on the writer", "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    auto store = TrustStore::load(dir.path, owner.post());
    CHECK(store.trust(ski_a, "Wallbox-1"));
    CHECK(store.is_trusted(ski_a)); // before anything ran on the owner's queue
    CHECK(entries(dir.path).empty());
    CHECK_FALSE(settle(store, owner));
    CHECK(reload(dir.path) == store.peers());
}

TEST_CASE("trust store: a clean stop loses nothing, also with a write in flight", "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    std::vector<TrustedPeer> expected;
    {
        auto store = TrustStore::load(dir.path, owner.post());
        store.trust(ski_a, "first");
        owner.run_ready(); // the first write starts and is still in flight (its result is never run)
        store.trust(ski_b);
        store.set_ship_id(ski_a, "second");
        store.untrust(ski_b);
        store.trust(ski_c);
        expected = store.peers();
        // Destroyed without the owner running anything more.
    }
    CHECK(reload(dir.path) == expected);
}

TEST_CASE("trust store: files are 0600 and every acknowledged version loads; compaction keeps the state",
          "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    auto store = TrustStore::load(dir.path, owner.post());
    const std::size_t bound = store.compaction_bound();
    CHECK(bound == TrustStore::min_compaction_bound);
    // One change per owner turn and per write: the journal grows by one record each time until it passes
    // the bound, and then the next write is a snapshot.
    std::size_t n = 0;
    for (; store.writes().snapshots == 0 && n < 2 * bound; ++n) {
        store.trust(ski_number(static_cast<int>(n % 40)), "id-" + std::to_string(n));
        REQUIRE_FALSE(settle(store, owner));
        if (n % 50 == 0) {
            INFO("change " << n);
            CHECK(reload(dir.path) == store.peers());
        }
    }
    CHECK(n == bound + 1);
    CHECK(store.writes().journal_appends == bound);
    CHECK(store.writes().snapshots == 1);
    CHECK(store.journal_records() == 0);
    CHECK(lines(store.journal_path()) == 0);
    CHECK(reload(dir.path) == store.peers());
    CHECK(entries(dir.path) == std::vector<fs::path>{"trust.journal", "trust.json"}); // no temporary left

    // The snapshot says which record it covers, and new records follow it in the emptied journal.
    CHECK(read(store.path()).find("\"sequence\": " + std::to_string(n)) != std::string::npos);
    store.untrust(ski_number(3));
    REQUIRE_FALSE(settle(store, owner));
    CHECK(read(store.journal_path()) == remove(n + 1, ski_number(3)));
    CHECK(reload(dir.path) == store.peers());

    for (const auto& file : {store.path(), store.journal_path()}) {
        struct stat st {};
        REQUIRE(::stat(file.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
    }
}

TEST_CASE("trust store: a burst of 1000 changes costs a handful of writes and restarts as it was",
          "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    std::mt19937 random(20261203);
    std::vector<TrustedPeer> expected;
    TrustStore::Writes writes;
    {
        auto store = TrustStore::load(dir.path, owner.post());
        int changes = 0;
        // Mixed trust / untrust / SHIP ID / address over 100 SKIs, all in one turn of the owner's loop (as a
        // burst of auto-accepted handshakes handled back to back).
        while (changes < 1000) {
            const std::string ski = ski_number(static_cast<int>(random() % 100));
            const std::string id = "id-" + std::to_string(random() % 1000);
            bool changed = false;
            switch (random() % 4) {
            case 0:
                changed = store.trust(ski, id);
                break;
            case 1:
                changed = store.untrust(ski);
                break;
            case 2:
                changed = store.set_ship_id(ski, id);
                break;
            default:
                changed = store.set_address(ski, PeerAddress{"192.0.2." + std::to_string(random() % 250),
                                                             static_cast<std::uint16_t>(4711 + random() % 9),
                                                             "/ship/"});
                break;
            }
            changes += changed ? 1 : 0;
        }
        REQUIRE_FALSE(settle(store, owner));
        writes = store.writes();
        std::cout << "[trust] 1000 changes in one turn: " << writes.journal_appends << " journal append(s), "
                  << writes.snapshots << " snapshot(s), journal " << lines(store.journal_path())
                  << " records\n";
        CHECK(writes.journal_appends + writes.snapshots == 1);
        CHECK(lines(store.journal_path()) <= 100); // one record per SKI, not per change

        // The same again, with the owner's loop turning between changes (the writer runs meanwhile): each
        // write carries everything made while the previous one was in flight.
        int turns = 0;
        for (int i = 0; i < 1000; ++i) {
            const std::string ski = ski_number(static_cast<int>(random() % 100));
            if (i % 3 == 0)
                store.untrust(ski);
            else
                store.trust(ski, "again-" + std::to_string(i));
            if (i % 10 == 9) {
                owner.run_ready();
                ++turns;
            }
        }
        REQUIRE_FALSE(settle(store, owner));
        const auto total = store.writes();
        const auto second = total.journal_appends + total.snapshots - 1;
        std::cout << "[trust] 1000 changes over " << turns << " owner turns: " << second << " write(s)\n";
        CHECK(second <= static_cast<std::uint64_t>(turns) + 2);
        CHECK(total.failed == 0);
        expected = store.peers();
    }
    const auto loaded = reload(dir.path);
    CHECK(loaded == expected);
}

TEST_CASE("trust store: when_durable runs in order, through post, once the changes are on disk", "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    auto store = TrustStore::load(dir.path, owner.post());
    std::vector<std::string> order;
    std::string journal_at_first;
    // Nothing changed yet: already durable, but never called inside when_durable itself.
    store.when_durable([&](auto error) {
        CHECK_FALSE(error);
        order.push_back("nothing");
    });
    CHECK(order.empty());
    store.trust(ski_a);
    store.when_durable([&](auto error) {
        CHECK_FALSE(error);
        order.push_back("a");
        journal_at_first = read(store.journal_path());
    });
    store.trust(ski_b);
    store.when_durable([&](auto) { order.push_back("b"); });
    store.when_durable([&](auto) { order.push_back("b again"); });
    REQUIRE(owner.run_until([&] { return order.size() == 4; }));
    CHECK(order == std::vector<std::string>{"nothing", "a", "b", "b again"});
    // When "a" ran, a's record was in the file.
    CHECK(journal_at_first.find(ski_a) != std::string::npos);
}

TEST_CASE("trust store: a failed write is reported, keeps the change in memory and is retried", "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    auto store = TrustStore::load(dir.path, owner.post());
    // Make the journal unwritable: a non-empty directory in its place (root ignores modes).
    fs::create_directory(store.journal_path());
    write(store.journal_path() / "keep", "x");

    CHECK(store.trust(ski_a, "first")); // memory at once, no throw
    auto error = settle(store, owner);
    REQUIRE(error);
    CHECK_THAT(*error, Catch::Contains("trust.journal"));
    CHECK(store.is_trusted(ski_a));
    CHECK(store.writes().failed == 1);
    // Still broken: the next change tries again, with the first one, and fails again.
    CHECK(store.trust(ski_b, "second"));
    error = settle(store, owner);
    REQUIRE(error);
    CHECK(store.writes().failed == 2);
    CHECK(entries(store.journal_path()) == std::vector<fs::path>{"keep"}); // nothing half-written
    CHECK(entries(dir.path) == std::vector<fs::path>{"trust.journal"});

    // The disk works again: the next change writes the failed ones too.
    fs::remove_all(store.journal_path());
    CHECK(store.trust(ski_c));
    CHECK_FALSE(settle(store, owner));
    CHECK(store.writes().journal_appends == 1);
    CHECK(store.size() == 3);
    CHECK(reload(dir.path) == store.peers());
}

TEST_CASE("trust store: after a failed write, when_durable alone retries it", "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    auto store = TrustStore::load(dir.path, owner.post());
    fs::create_directory(store.journal_path());
    write(store.journal_path() / "keep", "x");
    store.trust(ski_a);
    REQUIRE(settle(store, owner));
    fs::remove_all(store.journal_path());
    CHECK_FALSE(settle(store, owner));
    CHECK(reload(dir.path) == store.peers());
}

TEST_CASE("trust store: a torn last journal line is ignored, and the next append replaces it", "[trust]") {
    TempDir dir;
    const auto journal = dir.path / "trust.journal";
    for (const std::string& torn :
         {std::string("{\"seq\":3,\"op\":\"put\",\"ski\":\"") + ski_c.substr(0, 17), // cut mid-record
          put(3, ski_c).substr(0, put(3, ski_c).size() - 1),                         // all but the newline
          std::string("{\"seq\":3,\"op\":\"pu\n")}) {                                // newline, yet no record
        INFO(torn);
        write(journal, put(1, ski_a, "A") + put(2, ski_b, "B") + torn);
        OwnerQueue owner;
        auto store = TrustStore::load(dir.path, owner.post());
        CHECK(store.size() == 2);
        CHECK(store.find(ski_a)->ship_id == "A");
        CHECK_FALSE(store.is_trusted(ski_c));

        store.untrust(ski_a);
        REQUIRE_FALSE(settle(store, owner));
        CHECK(read(journal) == put(1, ski_a, "A") + put(2, ski_b, "B") + remove(3, ski_a));
        CHECK(reload(dir.path) == store.peers());
    }
}

TEST_CASE("trust store: every point a crash can stop a write at loads the acknowledged or the new state",
          "[trust]") {
    TempDir dir;
    const auto file = dir.path / "trust.json";
    const auto journal = dir.path / "trust.journal";
    auto load_skis = [&] {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto& p : reload(dir.path))
            out.emplace_back(p.ski, p.ship_id);
        return out;
    };
    using Expected = std::vector<std::pair<std::string, std::string>>;

    SECTION("killed during an append: the records before it are the state") {
        write(journal, put(1, ski_a, "A") + put(2, ski_b));
        CHECK(load_skis() == Expected{{ski_a, "A"}, {ski_b, ""}});
    }
    SECTION("killed while writing the snapshot's temporary: old snapshot + journal, temporary removed") {
        write(file, snapshot(2, {{ski_a, "A"}}));
        write(journal, put(1, ski_a, "old") + put(2, ski_a, "A") + put(3, ski_b, "B"));
        write(dir.path / ".trust.json.tmp-0123456789abcdef", "{\"version\":1,\"sequence\":3,\"pe");
        CHECK(load_skis() == Expected{{ski_a, "A"}, {ski_b, "B"}});
        CHECK_FALSE(fs::exists(dir.path / ".trust.json.tmp-0123456789abcdef"));
    }
    SECTION("killed after the snapshot's rename, before the journal was emptied: the snapshot's state") {
        // The journal still holds the history that led to the snapshot (sequence 4); none of it is newer.
        write(file, snapshot(4, {{ski_a, "new"}}));
        write(journal, put(1, ski_a, "old") + put(2, ski_b) + put(3, ski_a, "new") + remove(4, ski_b));
        CHECK(load_skis() == Expected{{ski_a, "new"}});
    }
    SECTION("only records newer than the snapshot's sequence are applied") {
        // Not a state a kill leaves (replaying a snapshot's own history ends where the snapshot is, since
        // records carry full values); files made to disagree show the rule itself.
        write(file, snapshot(4, {{ski_a, "snapshot"}}));
        write(journal, put(3, ski_a, "older") + put(4, ski_b, "older") + put(5, ski_c, "newer"));
        CHECK(load_skis() == Expected{{ski_a, "snapshot"}, {ski_c, "newer"}});
    }
    SECTION("killed after the journal was emptied: the snapshot alone") {
        write(file, snapshot(4, {{ski_a, "new"}}));
        write(journal, "");
        CHECK(load_skis() == Expected{{ski_a, "new"}});
    }
    SECTION("records newer than the snapshot are replayed; one written twice (at shutdown) counts once") {
        write(file, snapshot(4, {{ski_a, "A"}}));
        write(journal, put(5, ski_b, "B") + remove(6, ski_a) + put(5, ski_b, "B") + remove(6, ski_a) +
                           put(7, ski_c, "C"));
        CHECK(load_skis() == Expected{{ski_c, "C"}, {ski_b, "B"}});
    }
    SECTION("a trust.json from before the journal (no sequence) loads as it is") {
        write(file, "{\"version\":1,\"peers\":[{\"ski\":\"" + ski_a + "\",\"shipId\":\"Wallbox-1\"}]}");
        CHECK(load_skis() == Expected{{ski_a, "Wallbox-1"}});
        OwnerQueue owner;
        auto store = TrustStore::load(dir.path, owner.post());
        store.trust(ski_b);
        REQUIRE_FALSE(settle(store, owner));
        CHECK(reload(dir.path) == store.peers());
    }
    SECTION("a new store continues the sequence after what it loaded") {
        write(file, snapshot(40, {{ski_a, "A"}}));
        write(journal, put(41, ski_b));
        OwnerQueue owner;
        auto store = TrustStore::load(dir.path, owner.post());
        store.untrust(ski_b);
        REQUIRE_FALSE(settle(store, owner));
        CHECK(read(journal) == put(41, ski_b) + remove(42, ski_b));
        CHECK(load_skis() == Expected{{ski_a, "A"}});
    }
}

TEST_CASE("trust store: a corrupt file is an error and is never emptied", "[trust]") {
    TempDir dir;
    OwnerQueue owner;
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
        {"{\"version\":1,\"sequence\":-1,\"peers\":[]}", "sequence"},
        {"", "invalid JSON"},
    };
    for (const auto& [text, fault] : bad) {
        INFO(text);
        write(file, text);
        try {
            TrustStore::load(dir.path, owner.post());
            FAIL("a corrupt trust file loaded");
        } catch (const TrustStoreError& e) {
            const std::string what = e.what();
            CHECK(what.find(file.string()) != std::string::npos);
            CHECK(what.find(fault) != std::string::npos);
        }
        CHECK(read(file) == text); // untouched
    }
}

TEST_CASE("trust store: a journal line that is not a record, with lines after it, is corruption", "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    const fs::path journal = dir.path / "trust.journal";
    const std::vector<std::pair<std::string, std::string>> bad = {
        {put(1, ski_a) + "{\"seq\":2,\"op\":\"pu\n" + put(3, ski_b), "line 2: invalid JSON"},
        {put(1, ski_a) + "{\"seq\":2,\"op\":\"rename\",\"ski\":\"" + ski_b + "\"}\n" + put(3, ski_b), "op"},
        {"{\"seq\":0,\"op\":\"put\",\"ski\":\"" + ski_a + "\"}\n" + put(3, ski_b), "line 1: \"seq\""},
        {"{\"op\":\"put\",\"ski\":\"" + ski_a + "\"}\n" + put(3, ski_b), "seq"},
        {"{\"seq\":1,\"op\":\"remove\",\"ski\":\"xyz\"}\n" + put(3, ski_b), "not a SKI"},
    };
    for (const auto& [text, fault] : bad) {
        INFO(text);
        write(journal, text);
        try {
            TrustStore::load(dir.path, owner.post());
            FAIL("a corrupt journal loaded");
        } catch (const TrustStoreError& e) {
            const std::string what = e.what();
            CHECK(what.find(journal.string()) != std::string::npos);
            CHECK(what.find(fault) != std::string::npos);
        }
        CHECK(read(journal) == text); // untouched
    }
}

TEST_CASE("trust store: a corrupt file is moved aside when the caller allows starting empty", "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    const fs::path file = dir.path / "trust.json";
    const std::string garbage = "{\"version\":1,\"peers\":[ truncated";
    write(file, garbage);
    write(dir.path / "trust.journal", put(1, ski_b));
    auto store = TrustStore::load(dir.path, owner.post(), CorruptTrustFile::start_empty);
    CHECK(store.size() == 0); // the journal's records are not replayed onto nothing: both went aside
    REQUIRE(store.moved_aside());
    CHECK(store.moved_aside()->filename().string().starts_with("trust.json.corrupt-"));
    CHECK(read(*store.moved_aside()) == garbage);
    CHECK_FALSE(fs::exists(file));
    CHECK_FALSE(fs::exists(dir.path / "trust.journal"));

    // A second corrupt file in the same second does not overwrite the first one kept aside.
    write(file, garbage + "2");
    auto again = TrustStore::load(dir.path, owner.post(), CorruptTrustFile::start_empty);
    REQUIRE(again.moved_aside());
    CHECK(*again.moved_aside() != *store.moved_aside());
    CHECK(read(*store.moved_aside()) == garbage);
    CHECK(read(*again.moved_aside()) == garbage + "2");

    again.trust(ski_a);
    REQUIRE_FALSE(settle(again, owner));
    CHECK(reload(dir.path) == again.peers());

    // A corrupt journal under start_empty: both files go aside as well.
    again.trust(ski_c);
    REQUIRE_FALSE(settle(again, owner));
    write(dir.path / "trust.journal", "not a record\n" + put(9, ski_b));
    auto third = TrustStore::load(dir.path, owner.post(), CorruptTrustFile::start_empty);
    CHECK(third.size() == 0);
    REQUIRE(third.moved_aside());
    CHECK(third.moved_aside()->filename().string().starts_with("trust.journal.corrupt-"));
}

// Hostile-suite finding: every kill -9 during a write left a `.trust.json.tmp-*` behind, for ever.
TEST_CASE("trust store: temporaries left by an interrupted write are removed at load, the file is kept",
          "[trust]") {
    TempDir dir;
    OwnerQueue owner;
    write(dir.path / "trust.json", snapshot(0, {{ski_a, ""}}));
    for (const char* name : {".trust.json.tmp-1a2b3c", ".trust.json.tmp-zz"})
        std::ofstream(dir.path / name) << "{\"half";
    std::ofstream(dir.path / ".other.tmp-1") << "not ours";

    auto store = TrustStore::load(dir.path, owner.post());
    CHECK(store.is_trusted(ski_a));
    CHECK_FALSE(fs::exists(dir.path / ".trust.json.tmp-1a2b3c"));
    CHECK_FALSE(fs::exists(dir.path / ".trust.json.tmp-zz"));
    CHECK(fs::exists(dir.path / ".other.tmp-1"));
}
