#include "hub/name_resolver.hpp"

#include <algorithm>
#include <mutex>
#include <thread>

#include <netdb.h>
#include <sys/socket.h>

namespace ship::hub {

// Shared by the owner and every lookup thread: the only thing a lookup thread touches besides its own copy
// of the name. `post` is called under the mutex and only while the owner lives, so the strand behind it
// is still there.
struct NameResolver::Mailbox {
    // Cannot be avoided: the owner closes the mailbox on the strand while a lookup thread may be about to
    // post; an atomic flag alone could not keep `post` from running (and being destroyed) between check and
    // call.
    std::mutex mutex;
    bool open = true;
    Post post;
};

NameResolver::NameResolver(Post post)
    : mailbox_(std::make_shared<Mailbox>()) {
    mailbox_->post = std::move(post);
}

NameResolver::~NameResolver() {
    std::lock_guard lock(mailbox_->mutex);
    mailbox_->open = false;
    mailbox_->post = nullptr;
}

std::vector<std::string> NameResolver::lookup(const std::string& name, std::string& error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    const int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &result);
    std::vector<std::string> out;
    if (rc != 0) {
        error = ::gai_strerror(rc);
        return out;
    }
    for (const addrinfo* ai = result; ai; ai = ai->ai_next) {
        char host[NI_MAXHOST];
        // NI_NUMERICHOST writes an IPv6 link-local address with its zone ("fe80::1%eth0").
        if (::getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, nullptr, 0, NI_NUMERICHOST) == 0 &&
            std::find(out.begin(), out.end(), host) == out.end())
            out.emplace_back(host);
    }
    ::freeaddrinfo(result);
    if (out.empty()) error = "no address";
    return out;
}

void NameResolver::resolve(std::string name, Done done) {
    // A thread, not the strand: getaddrinfo blocks (DNS, mDNS via nss) and has no callback API but glibc's
    // getaddrinfo_a, which runs the same kind of helper thread. Detached: it touches only the mailbox.
    std::thread([mailbox = mailbox_, name = std::move(name), done = std::move(done)]() mutable {
        std::string error;
        auto addresses = lookup(name, error);
        std::lock_guard lock(mailbox->mutex);
        if (!mailbox->open) return;
        mailbox->post([done = std::move(done), addresses = std::move(addresses),
                       error = std::move(error)]() mutable { done(std::move(addresses), std::move(error)); });
    }).detach();
}

} // namespace ship::hub
