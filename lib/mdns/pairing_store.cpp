#include "mdns/pairing_store.hpp"

#include <stdexcept>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <spdlog/spdlog.h>

#include "util/atomic_file.hpp"

namespace ship::mdns {

namespace {

constexpr int file_version = 1;

std::string string_of(const rapidjson::Value& object, const char* name, bool required = true) {
    auto it = object.FindMember(name);
    if (it == object.MemberEnd()) {
        if (required) throw std::runtime_error(std::string("no \"") + name + "\"");
        return {};
    }
    if (!it->value.IsString()) throw std::runtime_error(std::string("\"") + name + "\" is not a string");
    return {it->value.GetString(), it->value.GetStringLength()};
}

} // namespace

std::string serialize_pairing_state(const PairingSecret& secret, const ReplayGuard& guard,
                                    const std::optional<PairingStore::Paired>& paired) {
    rapidjson::StringBuffer buffer;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
    auto str = [&w](std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
    w.StartObject();
    w.Key("version");
    w.Int(file_version);
    w.Key("secret");
    str(hex_upper(secret.data(), secret.size()));
    w.Key("replayGuard");
    w.StartObject();
    w.Key("next");
    w.Uint64(guard.next());
    w.Key("entries");
    w.StartArray();
    for (const auto& e : guard.entries()) {
        if (!e) {
            w.Null();
            continue;
        }
        w.StartObject();
        w.Key("alg");
        str(e->alg);
        w.Key("digest");
        str(e->digest);
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    if (paired) {
        w.Key("paired");
        w.StartObject();
        w.Key("fingerprint");
        str(paired->fingerprint);
        w.Key("shipId");
        str(paired->ship_id);
        w.Key("ski");
        str(paired->ski);
        w.EndObject();
    }
    w.EndObject();
    return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

void parse_pairing_state(std::string_view text, PairingSecret& secret, ReplayGuard& guard,
                         std::optional<PairingStore::Paired>& paired) {
    rapidjson::Document doc;
    doc.Parse(text.data(), text.size());
    if (doc.HasParseError())
        throw std::runtime_error("invalid JSON at byte " + std::to_string(doc.GetErrorOffset()) + ": " +
                                 rapidjson::GetParseError_En(doc.GetParseError()));
    if (!doc.IsObject()) throw std::runtime_error("the top level is not an object");
    if (!doc.HasMember("version") || !doc["version"].IsInt() || doc["version"].GetInt() != file_version)
        throw std::runtime_error("unsupported \"version\" (this shipd reads version 1)");
    const auto bytes = parse_hex(string_of(doc, "secret"), pairing_secret_bytes);
    if (!bytes) throw std::runtime_error("\"secret\" is not 32 hex digits");
    std::copy(bytes->begin(), bytes->end(), secret.begin());
    if (!doc.HasMember("replayGuard") || !doc["replayGuard"].IsObject())
        throw std::runtime_error("no \"replayGuard\" object");
    const auto& g = doc["replayGuard"];
    if (!g.HasMember("next") || !g["next"].IsUint64() || !g.HasMember("entries") || !g["entries"].IsArray())
        throw std::runtime_error("\"replayGuard\" needs \"next\" and \"entries\"");
    std::vector<std::optional<ReplayGuard::Entry>> entries;
    for (const auto& e : g["entries"].GetArray()) {
        if (e.IsNull()) {
            entries.emplace_back();
            continue;
        }
        if (!e.IsObject()) throw std::runtime_error("a replayGuard entry is neither null nor an object");
        entries.push_back(ReplayGuard::Entry{string_of(e, "alg"), string_of(e, "digest")});
    }
    // A ring of another size (a later shipd with a larger guard) keeps the newest entries it can hold.
    if (!guard.restore(entries, g["next"].GetUint64())) {
        ReplayGuard resized(guard.size());
        const std::size_t n = entries.size();
        const std::size_t next = g["next"].GetUint64();
        for (std::size_t k = 0; k < n && next != 0; ++k) {
            const auto& e = entries[(next - 1 + k) % n]; // oldest first, from `next`
            if (e) resized.store(e->digest);
        }
        guard = resized;
    }
    paired.reset();
    if (doc.HasMember("paired")) {
        const auto& p = doc["paired"];
        if (!p.IsObject()) throw std::runtime_error("\"paired\" is not an object");
        paired = PairingStore::Paired{string_of(p, "fingerprint"), string_of(p, "shipId"),
                                      string_of(p, "ski", false)};
    }
}

struct PairingStore::State : std::enable_shared_from_this<State> {
    State(std::filesystem::path file, Post post_in)
        : path(std::move(file))
        , post(std::move(post_in)) {}
    ~State() {
        if (dirty && writer) writer->submit([p = path, text = text()] { util::write_file_atomic(p, text); });
    }

    std::string text() const { return serialize_pairing_state(secret, guard, paired); }
    void flush();

    std::filesystem::path path;
    Post post;
    PairingSecret secret{};
    ReplayGuard guard;
    std::optional<Paired> paired;
    bool writing = false, dirty = false;
    std::vector<Saved> waiting, in_flight;
    std::uint64_t completed = 0;
    std::unique_ptr<util::DiskWriter> writer; // last: drained first on destruction
};

void PairingStore::State::flush() {
    if (writing || !dirty) return;
    writing = true;
    dirty = false;
    in_flight = std::move(waiting);
    waiting.clear();
    writer->submit([p = path, t = text()] { util::write_file_atomic(p, t); },
                   [weak = weak_from_this()](std::optional<std::string> error) {
                       auto self = weak.lock();
                       if (!self) return;
                       self->writing = false;
                       ++self->completed;
                       if (error) {
                           spdlog::error("pairing service: writing {} failed: {}", self->path.string(),
                                         *error);
                           self->dirty = true; // the next save tries again
                       }
                       auto done = std::move(self->in_flight);
                       self->in_flight.clear();
                       self->flush();
                       for (auto& d : done)
                           if (d) d(error);
                   });
}

PairingStore::PairingStore(std::shared_ptr<State> state)
    : state_(std::move(state)) {}
PairingStore::~PairingStore() = default;
PairingStore::PairingStore(PairingStore&&) noexcept = default;
PairingStore& PairingStore::operator=(PairingStore&&) noexcept = default;

PairingStore PairingStore::load(const std::filesystem::path& state_dir, Post post) {
    auto state = std::make_shared<State>(state_dir / file_name, post);
    util::remove_stale_temporaries(state->path);
    const auto text = util::read_file(state->path);
    if (text) {
        try {
            parse_pairing_state(*text, state->secret, state->guard, state->paired);
        } catch (const std::exception& e) {
            throw std::runtime_error("pairing state '" + state->path.string() + "' is corrupt: " + e.what() +
                                     " (remove it to start over: the secret in the QR text changes then)");
        }
    }
    state->writer = std::make_unique<util::DiskWriter>(std::move(post));
    if (!text) {
        // First start: the new secret goes to disk like every other write, off the caller's thread (the
        // daemon's loop thread); a clean stop (or `shipd --print-qr` ending) drains the write before exit.
        state->secret = random_secret();
        state->dirty = true;
        state->flush();
        // Debug: `shipd --print-qr` comes here before logging is set up, and its stdout is for the QR text.
        spdlog::debug("pairing service: created a new secret in {}", state->path.string());
    }
    return PairingStore(std::move(state));
}

const std::filesystem::path& PairingStore::path() const noexcept {
    return state_->path;
}
const PairingSecret& PairingStore::secret() const noexcept {
    return state_->secret;
}
ReplayGuard& PairingStore::guard() noexcept {
    return state_->guard;
}
const std::optional<PairingStore::Paired>& PairingStore::paired() const noexcept {
    return state_->paired;
}
void PairingStore::set_paired(std::optional<Paired> paired) {
    state_->paired = std::move(paired);
}

void PairingStore::save(Saved done) {
    state_->dirty = true;
    state_->waiting.push_back(std::move(done));
    state_->flush(); // saves made while a write is in flight ride together on the next one
}

std::uint64_t PairingStore::writes() const noexcept {
    return state_->completed;
}

} // namespace ship::mdns
