// Resolves host names without blocking the strand: each lookup runs getaddrinfo on a short-lived thread that
// touches nothing but its own copy of the name, and hands the numeric addresses back through `post`.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ship::hub {

class NameResolver {
public:
    // Hands a closure to the owner's thread (net::Strand::post); false if it will not run.
    using Post = std::function<bool(std::function<void()>)>;
    // On the owner's thread: the numeric addresses (IPv6 link-local with its zone), or none and why.
    using Done = std::function<void(std::vector<std::string> addresses, std::string error)>;

    explicit NameResolver(Post post);
    // Results still on their way are dropped: a lookup thread never calls `post` after this returns, and is
    // not waited for (a stuck DNS lookup must not hold up a stop).
    ~NameResolver();
    NameResolver(const NameResolver&) = delete;
    NameResolver& operator=(const NameResolver&) = delete;

    void resolve(std::string name, Done done);

    // The blocking lookup itself (getaddrinfo, TCP, any family), for the worker and for tests.
    static std::vector<std::string> lookup(const std::string& name, std::string& error);

private:
    struct Mailbox;
    std::shared_ptr<Mailbox> mailbox_;
};

} // namespace ship::hub
