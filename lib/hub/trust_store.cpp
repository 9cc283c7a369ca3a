#include "hub/trust_store.hpp"

#include <chrono>
#include <ctime>
#include <limits>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <spdlog/spdlog.h>

#include "ship/ski.hpp"
#include "util/atomic_file.hpp"

namespace ship::hub {
namespace {

constexpr int file_version = 1;

// Thrown by the parser; load() adds the file name.
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

std::map<std::string, TrustedPeer, std::less<>> parse(const std::string& text) {
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
    const auto& list = member(doc, "peers", "the top level");
    if (!list.IsArray()) throw Corrupt{"\"peers\" is not an array"};

    std::map<std::string, TrustedPeer, std::less<>> peers;
    for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
        const std::string where = "peers[" + std::to_string(i) + "]";
        const auto& entry = list[i];
        if (!entry.IsObject()) throw Corrupt{where + " is not an object"};
        TrustedPeer peer;
        const std::string ski = string_member(entry, "ski", where);
        auto canonical = ship::normalize_ski(ski);
        if (!canonical) throw Corrupt{where + ": \"" + ski + "\" is not a SKI"};
        peer.ski = *canonical;
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
        if (!peers.emplace(peer.ski, peer).second)
            throw Corrupt{where + ": SKI " + peer.ski + " appears twice"};
    }
    return peers;
}

std::string serialize(const std::map<std::string, TrustedPeer, std::less<>>& peers) {
    rapidjson::StringBuffer buffer;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buffer);
    auto str = [&w](std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
    w.StartObject();
    w.Key("version");
    w.Int(file_version);
    w.Key("peers");
    w.StartArray();
    for (const auto& [ski, peer] : peers) {
        w.StartObject();
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
        w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::filesystem::path aside_name(const std::filesystem::path& path) {
    const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm utc{};
    gmtime_r(&now, &utc);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
    std::filesystem::path aside = path.string() + ".corrupt-" + stamp;
    for (int n = 1; std::filesystem::exists(aside); ++n)
        aside = path.string() + ".corrupt-" + stamp + "-" + std::to_string(n);
    return aside;
}

} // namespace

TrustStore TrustStore::load(const std::filesystem::path& state_dir, CorruptTrustFile on_corrupt) {
    TrustStore store(state_dir / file_name);
    // A kill during a write leaves its temporary behind; the target itself is always whole.
    if (const auto n = ship::util::remove_stale_temporaries(store.path_))
        spdlog::info("removed {} temporary trust file(s) left by an interrupted write", n);
    const std::optional<std::string> text = ship::util::read_file(store.path_);
    if (!text) return store;
    try {
        store.peers_ = parse(*text);
    } catch (const Corrupt& corrupt) {
        const std::string message = "trust file '" + store.path_.string() + "' is corrupt: " + corrupt.what;
        if (on_corrupt == CorruptTrustFile::fail) throw TrustStoreError(message);
        const auto aside = aside_name(store.path_);
        std::filesystem::rename(store.path_, aside);
        spdlog::warn("{}; moved it to '{}' and starting with no trusted peers", message, aside.string());
        store.moved_aside_ = aside;
    }
    return store;
}

bool TrustStore::is_trusted(std::string_view ski) const {
    return find(ski) != nullptr;
}

const TrustedPeer* TrustStore::find(std::string_view ski) const {
    auto canonical = ship::normalize_ski(ski);
    if (!canonical) return nullptr;
    auto it = peers_.find(*canonical);
    return it == peers_.end() ? nullptr : &it->second;
}

std::vector<TrustedPeer> TrustStore::peers() const {
    std::vector<TrustedPeer> out;
    out.reserve(peers_.size());
    for (const auto& [ski, peer] : peers_)
        out.push_back(peer);
    return out;
}

void TrustStore::commit(Peers next) {
    ship::util::write_file_atomic(path_, serialize(next));
    peers_ = std::move(next);
}

bool TrustStore::trust(std::string_view ski, std::string_view ship_id) {
    std::string canonical = canonical_or_throw(ski);
    auto it = peers_.find(canonical);
    if (it != peers_.end() && (ship_id.empty() || it->second.ship_id == ship_id)) return false;
    Peers next = peers_;
    TrustedPeer& peer = next[canonical];
    peer.ski = canonical;
    if (!ship_id.empty()) peer.ship_id = ship_id;
    commit(std::move(next));
    return true;
}

bool TrustStore::untrust(std::string_view ski) {
    std::string canonical = canonical_or_throw(ski);
    if (!peers_.contains(canonical)) return false;
    Peers next = peers_;
    next.erase(canonical);
    commit(std::move(next));
    return true;
}

bool TrustStore::update_trusted(std::string_view ski, const std::function<bool(TrustedPeer&)>& change) {
    const std::string canonical = canonical_or_throw(ski);
    auto it = peers_.find(canonical);
    if (it == peers_.end()) return false;
    TrustedPeer changed = it->second;
    if (!change(changed)) return false;
    Peers next = peers_;
    next[canonical] = std::move(changed);
    commit(std::move(next));
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

} // namespace ship::hub
