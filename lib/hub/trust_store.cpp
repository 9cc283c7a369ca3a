// Memory first, disk after: mutators record which peers changed; one write at a time carries every change
// made since the previous one (journal append, or a snapshot when the journal is long); results come back
// through the owner's post function. Loading is snapshot + journal records newer than its sequence.
#include "hub/trust_store.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <deque>
#include <limits>
#include <set>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include "ship/ski.hpp"
#include "util/append_file.hpp"
#include "util/atomic_file.hpp"
#include "util/disk_writer.hpp"

namespace ship::hub {
namespace {

constexpr int file_version = 1;

using Peers = std::map<std::string, TrustedPeer, std::less<>>;
// Blocked SKIs, trusted or not (a blocked peer is refused inside TLS; trust is kept for when it is
// unblocked).
using Blocked = std::set<std::string, std::less<>>;
// SKI → sequence number of its last change.
using Changes = std::map<std::string, std::uint64_t, std::less<>>;

// Thrown by the parsers; load() adds the file name.
struct Corrupt {
    std::string what;
};

std::string canonical_or_throw(std::string_view ski) {
    auto canonical = ship::normalize_ski(ski);
    if (!canonical) throw std::invalid_argument("not a SKI (40 hex digits): '" + std::string(ski) + "'");
    return *canonical;
}

const rapidjson::Value& member(const rapidjson::Value& object, const char* name, std::string_view where) {
    auto it = object.FindMember(name);
    if (it == object.MemberEnd()) throw Corrupt{std::string(where) + " has no \"" + name + "\""};
    return it->value;
}

std::string string_member(const rapidjson::Value& object, const char* name, std::string_view where) {
    const auto& value = member(object, name, where);
    if (!value.IsString()) throw Corrupt{std::string(where) + ": \"" + name + "\" is not a string"};
    return {value.GetString(), value.GetStringLength()};
}

std::string ski_member(const rapidjson::Value& object, std::string_view where) {
    const std::string ski = string_member(object, "ski", where);
    auto canonical = ship::normalize_ski(ski);
    if (!canonical) throw Corrupt{std::string(where) + ": \"" + ski + "\" is not a SKI"};
    return *canonical;
}

// One peer as the snapshot's "peers" entries and the journal's put records hold it; `blocked` gets the
// optional "blocked" member (absent in files from before blocking existed: false).
TrustedPeer parse_peer(const rapidjson::Value& entry, const std::string& where, bool& blocked) {
    TrustedPeer peer;
    peer.ski = ski_member(entry, where);
    blocked = false;
    if (entry.HasMember("blocked")) {
        if (!entry["blocked"].IsBool()) throw Corrupt{where + ": \"blocked\" is not true or false"};
        blocked = entry["blocked"].GetBool();
    }
    if (entry.HasMember("shipId")) peer.ship_id = string_member(entry, "shipId", where);
    if (entry.HasMember("address")) {
        const auto& a = entry["address"];
        const std::string at = where + ".address";
        if (!a.IsObject()) throw Corrupt{at + " is not an object"};
        PeerAddress address;
        address.host = string_member(a, "host", at);
        const auto& port = member(a, "port", at);
        if (!port.IsUint() || port.GetUint() > std::numeric_limits<std::uint16_t>::max())
            throw Corrupt{at + ": \"port\" is not a port number"};
        address.port = static_cast<std::uint16_t>(port.GetUint());
        address.path = string_member(a, "path", at);
        peer.address = std::move(address);
    }
    // Learned, not chosen: a value this version does not know (a newer shipd's) is left out, not corrupt.
    if (entry.HasMember("doubleConnection")) {
        const std::string rule = string_member(entry, "doubleConnection", where);
        for (auto r :
             {DoubleConnectionRule::spec, DoubleConnectionRule::legacy, DoubleConnectionRule::first_come})
            if (rule == to_string(r)) peer.double_connection = r;
    }
    return peer;
}

struct Snapshot {
    Peers peers;
    Blocked blocked;
    std::uint64_t sequence = 0; // the last journal record it covers; files written before the journal have 0
};

Snapshot parse_snapshot(const std::string& text) {
    rapidjson::Document doc;
    doc.Parse(text.c_str(), text.size());
    if (doc.HasParseError())
        throw Corrupt{std::string("invalid JSON at byte ") + std::to_string(doc.GetErrorOffset()) + ": " +
                      rapidjson::GetParseError_En(doc.GetParseError())};
    if (!doc.IsObject()) throw Corrupt{"the top level is not an object"};
    const auto& version = member(doc, "version", "the top level");
    if (!version.IsInt() || version.GetInt() != file_version)
        throw Corrupt{"unsupported \"version\" (this shipd reads version " + std::to_string(file_version) +
                      ")"};
    Snapshot snapshot;
    if (doc.HasMember("sequence")) {
        if (!doc["sequence"].IsUint64()) throw Corrupt{"\"sequence\" is not a non-negative integer"};
        snapshot.sequence = doc["sequence"].GetUint64();
    }
    const auto& list = member(doc, "peers", "the top level");
    if (!list.IsArray()) throw Corrupt{"\"peers\" is not an array"};
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
        const std::string where = "peers[" + std::to_string(i) + "]";
        if (!list[i].IsObject()) throw Corrupt{where + " is not an object"};
        bool blocked = false;
        TrustedPeer peer = parse_peer(list[i], where, blocked);
        if (!snapshot.peers.emplace(peer.ski, peer).second)
            throw Corrupt{where + ": SKI " + peer.ski + " appears twice"};
        if (blocked) snapshot.blocked.insert(peer.ski);
    }
    // Blocked SKIs that are not trusted (older files have none).
    if (doc.HasMember("blocked")) {
        const auto& untrusted = doc["blocked"];
        if (!untrusted.IsArray()) throw Corrupt{"\"blocked\" is not an array"};
        for (rapidjson::SizeType i = 0; i < untrusted.Size(); ++i) {
            const std::string where = "blocked[" + std::to_string(i) + "]";
            if (!untrusted[i].IsString()) throw Corrupt{where + " is not a string"};
            auto canonical = ship::normalize_ski(untrusted[i].GetString());
            if (!canonical)
                throw Corrupt{where + ": \"" + std::string(untrusted[i].GetString()) + "\" is not a SKI"};
            if (snapshot.peers.contains(*canonical))
                throw Corrupt{where + ": SKI " + *canonical + " is listed in \"peers\" too"};
            snapshot.blocked.insert(*canonical);
        }
    }
    return snapshot;
}

// A journal line: {"seq":N,"op":"put",<peer fields>[,"blocked":true]}, {"seq":N,"op":"block","ski":".."}
// (blocked, not trusted) or {"seq":N,"op":"remove","ski":".."} (neither).
struct Record {
    std::uint64_t seq = 0;
    std::string ski;
    std::optional<TrustedPeer> put; // nullopt: not trusted
    bool blocked = false;
};

Record parse_record(std::string_view line, const std::string& where) {
    rapidjson::Document doc;
    doc.Parse(line.data(), line.size());
    if (doc.HasParseError())
        throw Corrupt{where + ": invalid JSON at byte " + std::to_string(doc.GetErrorOffset()) + ": " +
                      rapidjson::GetParseError_En(doc.GetParseError())};
    if (!doc.IsObject()) throw Corrupt{where + " is not an object"};
    const auto& seq = member(doc, "seq", where);
    if (!seq.IsUint64() || seq.GetUint64() == 0) throw Corrupt{where + ": \"seq\" is not a positive integer"};
    Record record;
    record.seq = seq.GetUint64();
    const std::string op = string_member(doc, "op", where);
    if (op == "put") {
        record.put = parse_peer(doc, where, record.blocked);
        record.ski = record.put->ski;
    } else if (op == "block") {
        record.ski = ski_member(doc, where);
        record.blocked = true;
    } else if (op == "remove") {
        record.ski = ski_member(doc, where);
    } else {
        throw Corrupt{where + ": unknown \"op\" \"" + op + "\""};
    }
    return record;
}

struct JournalScan {
    std::vector<Record> records;
    std::uint64_t good_size = 0; // bytes up to and including the last accepted line's newline
};

// Every line must be a record, except the last one: a line without its newline, or one that does not parse,
// is an append that a crash cut short. It was never acknowledged, so it is dropped (and cut off by the next
// append). A bad line before other lines is corruption.
JournalScan scan_journal(const std::string& text) {
    JournalScan scan;
    std::size_t pos = 0;
    for (std::size_t number = 1; pos < text.size(); ++number) {
        const std::size_t newline = text.find('\n', pos);
        if (newline == std::string::npos) break; // torn: no newline
        const std::string_view line(text.data() + pos, newline - pos);
        const bool last = newline + 1 == text.size();
        try {
            scan.records.push_back(parse_record(line, "line " + std::to_string(number)));
        } catch (const Corrupt&) {
            if (last) break; // torn: cut inside a multi-byte write, or garbage the crash left
            throw;
        }
        pos = newline + 1;
        scan.good_size = pos;
    }
    return scan;
}

template <typename Writer>
void write_peer_fields(Writer& w, const TrustedPeer& peer) {
    auto str = [&w](std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
    w.Key("ski");
    str(peer.ski);
    w.Key("shipId");
    str(peer.ship_id);
    if (peer.address) {
        w.Key("address");
        w.StartObject();
        w.Key("host");
        str(peer.address->host);
        w.Key("port");
        w.Uint(peer.address->port);
        w.Key("path");
        str(peer.address->path);
        w.EndObject();
    }
    if (peer.double_connection) {
        w.Key("doubleConnection");
        str(to_string(*peer.double_connection));
    }
}

std::string serialize_snapshot(const Peers& peers, const Blocked& blocked, std::uint64_t sequence) {
    rapidjson::StringBuffer buffer;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key("version");
    w.Int(file_version);
    w.Key("sequence");
    w.Uint64(sequence);
    w.Key("peers");
    w.StartArray();
    for (const auto& [ski, peer] : peers) {
        w.StartObject();
        write_peer_fields(w, peer);
        if (blocked.contains(ski)) {
            w.Key("blocked");
            w.Bool(true);
        }
        w.EndObject();
    }
    w.EndArray();
    // Only when there is one: a file without blocked SKIs stays what it was before blocking existed.
    if (std::any_of(blocked.begin(), blocked.end(),
                    [&](const std::string& ski) { return !peers.contains(ski); })) {
        w.Key("blocked");
        w.StartArray();
        for (const auto& ski : blocked)
            if (!peers.contains(ski)) w.String(ski.data(), static_cast<rapidjson::SizeType>(ski.size()));
        w.EndArray();
    }
    w.EndObject();
    return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

// The records for `changes` (each peer's current value, or its removal), oldest change first.
std::string serialize_records(const Peers& peers, const Blocked& blocked, const Changes& changes) {
    std::vector<std::pair<std::uint64_t, std::string_view>> order;
    order.reserve(changes.size());
    for (const auto& [ski, seq] : changes)
        order.emplace_back(seq, ski);
    std::sort(order.begin(), order.end());
    std::string out;
    for (const auto& [seq, ski] : order) {
        rapidjson::StringBuffer buffer;
        rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
        w.StartObject();
        w.Key("seq");
        w.Uint64(seq);
        w.Key("op");
        const auto it = peers.find(ski);
        if (it != peers.end()) {
            w.String("put");
            write_peer_fields(w, it->second);
            if (blocked.contains(ski)) {
                w.Key("blocked");
                w.Bool(true);
            }
        } else if (blocked.contains(ski)) {
            w.String("block");
            w.Key("ski");
            w.String(ski.data(), static_cast<rapidjson::SizeType>(ski.size()));
        } else {
            w.String("remove");
            w.Key("ski");
            w.String(ski.data(), static_cast<rapidjson::SizeType>(ski.size()));
        }
        w.EndObject();
        out.append(buffer.GetString(), buffer.GetSize());
        out.push_back('\n');
    }
    return out;
}

std::filesystem::path aside_name(const std::filesystem::path& path, const std::string& stamp) {
    std::filesystem::path aside = path.string() + ".corrupt-" + stamp;
    for (int n = 1; std::filesystem::exists(aside); ++n)
        aside = path.string() + ".corrupt-" + stamp + "-" + std::to_string(n);
    return aside;
}

std::string utc_stamp() {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm utc{};
    gmtime_r(&now, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
    return stamp;
}

} // namespace

struct TrustStore::State : std::enable_shared_from_this<TrustStore::State> {
    State(std::filesystem::path dir, Post post_in)
        : path(dir / file_name)
        , journal_path(dir / journal_name)
        , post(std::move(post_in)) {}
    ~State();
    State(const State&) = delete;
    State& operator=(const State&) = delete;

    std::size_t compaction_bound() const {
        return std::max(min_compaction_bound, 2 * (peers.size() + blocked.size()));
    }
    void changed(const std::string& ski);
    void schedule_flush();
    void flush();
    void written(std::optional<std::string> error);

    std::filesystem::path path, journal_path;
    std::optional<std::filesystem::path> moved_aside;
    Peers peers;
    Blocked blocked;
    Post post;

    std::uint64_t seq = 0;         // the last sequence number given to a change
    std::uint64_t durable_seq = 0; // every change up to this one is on disk
    Changes dirty;                 // changed since the write in flight (if any) was started
    Changes in_flight;             // what the write in flight carries
    std::uint64_t in_flight_seq = 0;
    bool writing = false, writing_snapshot = false;
    bool flush_posted = false;
    std::size_t journal_records = 0;
    std::deque<std::pair<std::uint64_t, Durable>> waiters; // (changes up to, callback), in call order
    Writes counts;

    // Used only by jobs on the disk writer (one at a time, in order); the owner never touches it.
    std::shared_ptr<util::AppendOnlyFile> journal;
    // Last member: destroyed first, so its drain runs while everything the jobs were given still exists.
    std::unique_ptr<util::DiskWriter> writer;
};

TrustStore::State::~State() {
    // A clean stop loses nothing: the write in flight may never report back (the owner's loop is gone), so
    // its changes go out again with the rest; a record the journal holds twice is skipped on load (its
    // sequence number is not newer).
    Changes unwritten = in_flight;
    for (const auto& [ski, s] : dirty)
        unwritten[ski] = s;
    if (unwritten.empty() || !writer) return;
    writer->submit(
        [file = journal, text = serialize_records(peers, blocked, unwritten), n = unwritten.size()] {
            try {
                file->append(text);
            } catch (const std::exception& e) {
                spdlog::error("trust store: {} change(s) could not be written at shutdown: {}", n, e.what());
                throw;
            }
        });
}

void TrustStore::State::changed(const std::string& ski) {
    dirty[ski] = ++seq;
    schedule_flush();
}

// On a later turn of the owner's loop, so every change of this turn goes into the same write.
void TrustStore::State::schedule_flush() {
    if (flush_posted || writing) return; // a write in flight picks `dirty` up when it reports back
    flush_posted = true;
    post([weak = weak_from_this()] {
        if (auto self = weak.lock()) {
            self->flush_posted = false;
            self->flush();
        }
    });
}

void TrustStore::State::flush() {
    if (writing || dirty.empty()) return;
    writing = true;
    in_flight = std::move(dirty);
    dirty.clear();
    in_flight_seq = seq;
    writing_snapshot = journal_records + in_flight.size() > compaction_bound();
    std::function<void()> io;
    if (writing_snapshot) {
        // The snapshot holds every peer as of `seq`, the changes in flight included; the journal records
        // before it are then obsolete. A crash between the rename and the reset leaves them behind, and the
        // loader skips them: none is newer than the snapshot's sequence.
        io = [file = journal, snapshot = path, text = serialize_snapshot(peers, blocked, seq)] {
            util::write_file_atomic(snapshot, text);
            try {
                file->reset();
            } catch (const std::exception& e) {
                spdlog::warn("trust store: the journal could not be emptied after a snapshot ({}); its "
                             "records are older than the snapshot and are skipped on load",
                             e.what());
            }
        };
    } else {
        io = [file = journal, text = serialize_records(peers, blocked, in_flight)] { file->append(text); };
    }
    writer->submit(std::move(io), [weak = weak_from_this()](std::optional<std::string> error) {
        if (auto self = weak.lock()) self->written(std::move(error));
    });
}

void TrustStore::State::written(std::optional<std::string> error) {
    writing = false;
    if (error) {
        ++counts.failed;
        spdlog::error("trust store: writing {} failed: {}; {} change(s) stay in memory and are written again "
                      "with the next change",
                      (writing_snapshot ? path : journal_path).string(), *error, in_flight.size());
        for (const auto& [ski, s] : in_flight)
            dirty.try_emplace(ski, s); // a change made meanwhile is newer and wins
        in_flight.clear();
        auto failed = std::move(waiters);
        waiters.clear();
        for (auto& [target, done] : failed)
            done(error);
        return;
    }
    if (writing_snapshot) {
        ++counts.snapshots;
        journal_records = 0;
    } else {
        ++counts.journal_appends;
        journal_records += in_flight.size();
    }
    in_flight.clear();
    durable_seq = in_flight_seq;
    std::vector<Durable> ready;
    while (!waiters.empty() && waiters.front().first <= durable_seq) {
        ready.push_back(std::move(waiters.front().second));
        waiters.pop_front();
    }
    // Everything changed while this write was in flight goes out together, now.
    flush();
    for (auto& done : ready)
        done(std::nullopt);
}

// ------------------------------------------------------------------------------------------------ public

TrustStore::TrustStore(std::shared_ptr<State> state)
    : state_(std::move(state)) {}

TrustStore::~TrustStore() = default;
TrustStore::TrustStore(TrustStore&&) noexcept = default;
TrustStore& TrustStore::operator=(TrustStore&&) noexcept = default;

TrustStore TrustStore::load(const std::filesystem::path& state_dir, Post post, CorruptTrustFile on_corrupt) {
    if (!post) throw std::invalid_argument("TrustStore::load needs a post function");
    auto state = std::make_shared<State>(state_dir, std::move(post));
    // A kill during a snapshot leaves its temporary behind; the snapshot itself is always whole.
    if (const auto n = ship::util::remove_stale_temporaries(state->path))
        spdlog::info("removed {} temporary trust file(s) left by an interrupted write", n);

    const std::optional<std::string> snapshot_text = ship::util::read_file(state->path);
    const std::optional<std::string> journal_text = ship::util::read_file(state->journal_path);
    Snapshot snapshot;
    JournalScan journal;
    try {
        try {
            if (snapshot_text) snapshot = parse_snapshot(*snapshot_text);
        } catch (const Corrupt& corrupt) {
            throw TrustStoreError("trust file '" + state->path.string() + "' is corrupt: " + corrupt.what);
        }
        try {
            if (journal_text) journal = scan_journal(*journal_text);
        } catch (const Corrupt& corrupt) {
            throw TrustStoreError("trust journal '" + state->journal_path.string() +
                                  "' is corrupt: " + corrupt.what);
        }
    } catch (const TrustStoreError& e) {
        if (on_corrupt == CorruptTrustFile::fail) throw;
        // Both go: the journal alone on an empty store, or the snapshot without the journal's removals,
        // could trust a peer the user no longer trusts.
        const std::string stamp = utc_stamp();
        std::optional<std::filesystem::path> first;
        for (const auto& file : {state->path, state->journal_path}) {
            if (!std::filesystem::exists(file)) continue;
            const auto aside = aside_name(file, stamp);
            std::filesystem::rename(file, aside);
            if (!first) first = aside;
        }
        spdlog::warn("{}; moved the trust files aside ('{}') and starting with no trusted peers", e.what(),
                     first ? first->string() : std::string());
        state->moved_aside = first;
        snapshot = {};
        journal = {};
    }

    state->peers = std::move(snapshot.peers);
    state->blocked = std::move(snapshot.blocked);
    std::uint64_t applied = snapshot.sequence;
    std::uint64_t highest = snapshot.sequence;
    for (auto& record : journal.records) {
        highest = std::max(highest, record.seq);
        // Records up to the snapshot's sequence are in it already (a crash before the journal was emptied);
        // one written twice (again at shutdown) is skipped the second time. Full values: order is all.
        if (record.seq <= applied) continue;
        applied = record.seq;
        if (record.put)
            state->peers[record.ski] = std::move(*record.put);
        else
            state->peers.erase(record.ski);
        if (record.blocked)
            state->blocked.insert(record.ski);
        else
            state->blocked.erase(record.ski);
    }
    state->seq = highest;
    state->durable_seq = highest;
    state->journal_records = journal.records.size();
    state->journal = std::make_shared<util::AppendOnlyFile>(state->journal_path, journal.good_size);
    state->writer = std::make_unique<util::DiskWriter>(state->post);
    return TrustStore(std::move(state));
}

const std::filesystem::path& TrustStore::path() const noexcept {
    return state_->path;
}

const std::filesystem::path& TrustStore::journal_path() const noexcept {
    return state_->journal_path;
}

const std::optional<std::filesystem::path>& TrustStore::moved_aside() const noexcept {
    return state_->moved_aside;
}

bool TrustStore::is_trusted(std::string_view ski) const {
    return find(ski) != nullptr;
}

const TrustedPeer* TrustStore::find(std::string_view ski) const {
    auto canonical = ship::normalize_ski(ski);
    if (!canonical) return nullptr;
    auto it = state_->peers.find(*canonical);
    return it == state_->peers.end() ? nullptr : &it->second;
}

std::vector<TrustedPeer> TrustStore::peers() const {
    std::vector<TrustedPeer> out;
    out.reserve(state_->peers.size());
    for (const auto& [ski, peer] : state_->peers)
        out.push_back(peer);
    return out;
}

std::size_t TrustStore::size() const noexcept {
    return state_->peers.size();
}

bool TrustStore::trust(std::string_view ski, std::string_view ship_id) {
    std::string canonical = canonical_or_throw(ski);
    auto& peers = state_->peers;
    auto it = peers.find(canonical);
    if (it != peers.end() && (ship_id.empty() || it->second.ship_id == ship_id)) return false;
    TrustedPeer& peer = peers[canonical];
    peer.ski = canonical;
    if (!ship_id.empty()) peer.ship_id = ship_id;
    state_->changed(canonical);
    return true;
}

bool TrustStore::untrust(std::string_view ski) {
    std::string canonical = canonical_or_throw(ski);
    if (state_->peers.erase(canonical) == 0) return false;
    state_->changed(canonical);
    return true;
}

bool TrustStore::is_blocked(std::string_view ski) const {
    auto canonical = ship::normalize_ski(ski);
    return canonical && state_->blocked.contains(*canonical);
}

std::vector<std::string> TrustStore::blocked() const {
    return {state_->blocked.begin(), state_->blocked.end()};
}

bool TrustStore::set_blocked(std::string_view ski, bool blocked) {
    std::string canonical = canonical_or_throw(ski);
    const bool changed =
        blocked ? state_->blocked.insert(canonical).second : state_->blocked.erase(canonical) > 0;
    if (changed) state_->changed(canonical);
    return changed;
}

bool TrustStore::update_trusted(std::string_view ski, const std::function<bool(TrustedPeer&)>& change) {
    const std::string canonical = canonical_or_throw(ski);
    auto it = state_->peers.find(canonical);
    if (it == state_->peers.end()) return false;
    if (!change(it->second)) return false;
    state_->changed(canonical);
    return true;
}

bool TrustStore::set_ship_id(std::string_view ski, std::string_view ship_id) {
    return update_trusted(ski, [&](TrustedPeer& peer) {
        if (peer.ship_id == ship_id) return false;
        peer.ship_id = ship_id;
        return true;
    });
}

bool TrustStore::set_address(std::string_view ski, const PeerAddress& address) {
    return update_trusted(ski, [&](TrustedPeer& peer) {
        if (peer.address == address) return false;
        peer.address = address;
        return true;
    });
}

bool TrustStore::set_double_connection_rule(std::string_view ski, DoubleConnectionRule rule) {
    return update_trusted(ski, [&](TrustedPeer& peer) {
        if (peer.double_connection == rule) return false;
        peer.double_connection = rule;
        return true;
    });
}

void TrustStore::when_durable(Durable done) {
    auto& s = *state_;
    if (s.seq <= s.durable_seq) {
        s.post([done = std::move(done)] { done(std::nullopt); });
        return;
    }
    s.waiters.emplace_back(s.seq, std::move(done));
    // After a failed write nothing is in flight and nothing is scheduled: this is the retry.
    s.schedule_flush();
}

TrustStore::Writes TrustStore::writes() const noexcept {
    return state_->counts;
}

std::size_t TrustStore::journal_records() const noexcept {
    return state_->journal_records;
}

std::size_t TrustStore::compaction_bound() const noexcept {
    return state_->compaction_bound();
}

bool TrustStore::write_in_flight() const noexcept {
    return state_->writing;
}

} // namespace ship::hub
