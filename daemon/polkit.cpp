#include "polkit.hpp"

#include <grp.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

namespace ship::daemon {

namespace {

constexpr const char* polkit_name = "org.freedesktop.PolicyKit1";
constexpr const char* polkit_path = "/org/freedesktop/PolicyKit1/Authority";
constexpr const char* polkit_interface = "org.freedesktop.PolicyKit1.Authority";
constexpr auto polkit_timeout = std::chrono::seconds(5);

using Subject = sdbus::Struct<std::string, std::map<std::string, sdbus::Variant>>;
using AuthorizationResult = sdbus::Struct<bool, bool, std::map<std::string, std::string>>;

} // namespace

PolkitAuthority::PolkitAuthority(sdbus::IConnection& connection, std::chrono::milliseconds cache_for)
    : polkit_(sdbus::createProxy(connection, polkit_name, polkit_path))
    , bus_(sdbus::createProxy(connection, "org.freedesktop.DBus", "/org/freedesktop/DBus"))
    , cache_for_(cache_for)
    , own_uid_(geteuid()) {
    // Looked up once: the group's ID does not change while shipd runs, and /etc/group may be unreadable
    // later in a sandbox.
    if (const group* g = getgrnam("shipd")) shipd_group_ = g->gr_gid;
    // sdbus-c++ makes its process-wide pseudo connection (two eventfds) for the first Variant: make it now,
    // so that shipd holds its descriptors from the start and not from its first caller on (the soak test
    // checks that shipd returns to its idle count).
    [[maybe_unused]] const sdbus::Variant warm_up(std::string{});
}

PolkitAuthority::~PolkitAuthority() = default;

sdbus::MethodCall PolkitAuthority::probe_message() {
    return polkit_->createMethodCall(polkit_interface, "CheckAuthorization");
}

std::optional<Verdict> PolkitAuthority::cached(const std::string& sender, const std::string& action) {
    const auto it = cache_.find(Key{sender, action});
    if (it == cache_.end()) return std::nullopt;
    if (std::chrono::steady_clock::now() >= it->second.second) {
        cache_.erase(it);
        return std::nullopt;
    }
    return it->second.first;
}

void PolkitAuthority::check(const std::string& sender, const std::string& action, Done done) {
    if (auto verdict = cached(sender, action)) return done(*verdict);
    const Key key{sender, action};
    auto& queue = waiting_[key];
    queue.push_back(std::move(done));
    if (queue.size() == 1) ask_polkit(key);
}

void PolkitAuthority::ask_polkit(const Key& key) {
    const Subject subject{"system-bus-name", {{"name", sdbus::Variant(key.first)}}};
    const std::map<std::string, std::string> details;
    const std::uint32_t flags = 0; // no interaction: a daemon's API has nobody to ask for a password
    try {
        polkit_->callMethodAsync("CheckAuthorization")
            .onInterface(polkit_interface)
            .withTimeout(polkit_timeout)
            .withArguments(subject, key.second, details, flags, std::string())
            .uponReplyInvoke([this, key](const sdbus::Error* error, const AuthorizationResult& result) {
                if (error) return fall_back(key, error->getName() + ": " + error->getMessage());
                if (polkit_down_logged_) {
                    spdlog::info("polkit answers again: actions are authorized by polkit");
                    polkit_down_logged_ = false;
                }
                settle(key, Verdict{result.get<0>(), "polkit"});
            });
    } catch (const sdbus::Error& e) {
        fall_back(key, e.getName() + ": " + e.getMessage());
    }
}

void PolkitAuthority::fall_back(const Key& key, const std::string& why) {
    if (!polkit_down_logged_) {
        spdlog::warn(
            "polkit cannot authorize D-Bus calls ({}): allowing actions to root, shipd's own user and "
            "group shipd only, until it answers",
            why);
        polkit_down_logged_ = true;
    }
    try {
        bus_->callMethodAsync("GetConnectionCredentials")
            .onInterface("org.freedesktop.DBus")
            .withTimeout(polkit_timeout)
            .withArguments(key.first)
            .uponReplyInvoke([this, key](const sdbus::Error* error,
                                         const std::map<std::string, sdbus::Variant>& credentials) {
                if (error) return settle(key, Verdict{false, "the caller's credentials are unknown"});
                const auto uid = credentials.find("UnixUserID");
                if (uid == credentials.end()) return settle(key, Verdict{false, "the caller has no user ID"});
                const auto user = uid->second.get<std::uint32_t>();
                std::vector<std::uint32_t> groups;
                if (const auto g = credentials.find("UnixGroupIDs"); g != credentials.end())
                    groups = g->second.get<std::vector<std::uint32_t>>();
                const bool member =
                    shipd_group_ && std::find(groups.begin(), groups.end(), *shipd_group_) != groups.end();
                const bool allowed = user == 0 || user == own_uid_ || member;
                settle(key, Verdict{allowed, "polkit unavailable; fallback rule (root, shipd's user, group "
                                             "shipd) for uid " +
                                                 std::to_string(user)});
            });
    } catch (const sdbus::Error& e) {
        settle(key, Verdict{false, "the caller's credentials are unknown: " + e.getMessage()});
    }
}

void PolkitAuthority::settle(const Key& key, const Verdict& verdict) {
    cache_[key] = {verdict, std::chrono::steady_clock::now() + cache_for_};
    // Bounded: old answers go once the table grows (callers that left the bus never ask again).
    if (cache_.size() > 1024) {
        const auto now = std::chrono::steady_clock::now();
        std::erase_if(cache_, [&](const auto& entry) { return entry.second.second <= now; });
    }
    auto node = waiting_.extract(key);
    if (node.empty()) return;
    for (auto& done : node.mapped())
        done(verdict);
}

} // namespace ship::daemon
