// Who may do what: asks polkit (org.freedesktop.PolicyKit1.Authority.CheckAuthorization, subject
// system-bus-name) asynchronously, or, while polkit cannot answer, applies the old rule itself.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

#include <sdbus-c++/sdbus-c++.h>

namespace ship::daemon {

struct Verdict {
    bool allowed = false;
    std::string how; // for messages: "polkit", or the fallback rule and the caller's uid
};

// Loop thread only; answers come from the bus connection's processing, never from inside check() unless
// cached. Asks on the connection shipd serves on (its bus names are the subjects), with no user
// interaction. A polkit that is missing, not answering or erring (also: the action is not installed) means
// the fallback: root, shipd's own user and group shipd are allowed, from the caller's credentials as the
// bus reports them (GetConnectionCredentials) — said once in the log. Answers are kept `cache_for` per
// caller and action, so a busy SendData app costs polkit one question per interval, not one per message.
class PolkitAuthority {
public:
    using Done = std::function<void(const Verdict&)>;

    explicit PolkitAuthority(sdbus::IConnection& connection,
                             std::chrono::milliseconds cache_for = std::chrono::seconds(5));
    ~PolkitAuthority(); // pending questions are dropped unanswered
    PolkitAuthority(const PolkitAuthority&) = delete;
    PolkitAuthority& operator=(const PolkitAuthority&) = delete;

    // A recent answer for this bus name and action, if there is one.
    std::optional<Verdict> cached(const std::string& sender, const std::string& action);
    void check(const std::string& sender, const std::string& action, Done done);

    // A message of this connection, so that callers can reach the sd-bus connection beneath it.
    sdbus::MethodCall probe_message();

private:
    using Key = std::pair<std::string, std::string>;
    void ask_polkit(const Key& key);
    void fall_back(const Key& key, const std::string& why);
    void settle(const Key& key, const Verdict& verdict);

    std::unique_ptr<sdbus::IProxy> polkit_;
    std::unique_ptr<sdbus::IProxy> bus_;
    std::chrono::milliseconds cache_for_;
    std::optional<gid_t> shipd_group_;
    uid_t own_uid_;
    bool polkit_down_logged_ = false;
    std::map<Key, std::pair<Verdict, std::chrono::steady_clock::time_point>> cache_;
    std::map<Key, std::vector<Done>> waiting_;
};

} // namespace ship::daemon
