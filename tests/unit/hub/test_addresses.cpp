// hub/address_list and hub/name_resolver: the order a peer's addresses are dialled in, and host names
// resolved off the caller's thread.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "../util/owner_queue.hpp"
#include "hub/address_list.hpp"
#include "hub/name_resolver.hpp"

using namespace ship::hub;

namespace {
PeerAddress at(std::string host, std::uint16_t port = 4711) {
    return PeerAddress{std::move(host), port, "/ship/"};
}
std::vector<std::string> hosts(const std::vector<PeerAddress>& order) {
    std::vector<std::string> out;
    for (const auto& a : order)
        out.push_back(a.host);
    return out;
}
const Announced wallbox{{"192.0.2.7", "2001:db8::7", "fe80::7%eth0"}, "wallbox.local", 4711, "/ship/"};
} // namespace

TEST_CASE("addresses: numeric hosts, with or without a zone, and names", "[addresses]") {
    CHECK(is_numeric_host("192.0.2.7"));
    CHECK(is_numeric_host("::1"));
    CHECK(is_numeric_host("fe80::1%eth0"));
    CHECK_FALSE(is_numeric_host("wallbox.local"));
    CHECK_FALSE(is_numeric_host(""));
}

TEST_CASE("addresses: announced ones in mDNS order, the host name last, nothing twice", "[addresses]") {
    CHECK(hosts(dial_order(wallbox, std::nullopt)) ==
          std::vector<std::string>{"192.0.2.7", "2001:db8::7", "fe80::7%eth0", "wallbox.local"});
    Announced twice = wallbox;
    twice.addresses.push_back("192.0.2.7");
    CHECK(dial_order(twice, std::nullopt).size() == 4);
    Announced nameless = wallbox;
    nameless.host_name.clear();
    CHECK(hosts(dial_order(nameless, std::nullopt)) ==
          std::vector<std::string>{"192.0.2.7", "2001:db8::7", "fe80::7%eth0"});
}

// "The order learned from what worked last": the address of the last completed handshake goes first.
TEST_CASE("addresses: the one that worked last goes first while the peer still announces it", "[addresses]") {
    CHECK(hosts(dial_order(wallbox, at("fe80::7%eth0"))) ==
          std::vector<std::string>{"fe80::7%eth0", "192.0.2.7", "2001:db8::7", "wallbox.local"});
    CHECK(hosts(dial_order(wallbox, at("wallbox.local"))).front() == "wallbox.local");
    // No longer announced (the address may belong to another device now), or another port: not first.
    CHECK(hosts(dial_order(wallbox, at("192.0.2.99"))).front() == "192.0.2.7");
    CHECK(hosts(dial_order(wallbox, at("fe80::7%eth0", 4712))).front() == "192.0.2.7");
    // Not announced at all (no mDNS, a peer that never re-announces): what worked is all there is.
    CHECK(hosts(dial_order(std::nullopt, at("192.0.2.99"))) == std::vector<std::string>{"192.0.2.99"});
    CHECK(dial_order(std::nullopt, std::nullopt).empty());
}

TEST_CASE("addresses: what a name resolved to is tried unless it was tried already", "[addresses]") {
    const auto name = at("wallbox.local");
    const auto more = resolved_candidates(name, {"192.0.2.7", "192.0.2.8", "192.0.2.8"}, {at("192.0.2.7")});
    CHECK(hosts(more) == std::vector<std::string>{"192.0.2.8"});
    CHECK(more.front().port == 4711);
}

TEST_CASE("name resolver: the lookup runs off the caller's thread and comes back through post",
          "[addresses]") {
    ship::test::OwnerQueue owner;
    auto post = owner.post();
    NameResolver resolver([post](std::function<void()> fn) {
        post(std::move(fn));
        return true;
    });
    std::vector<std::string> addresses;
    std::string error = "not yet";
    std::thread::id ran_on;
    resolver.resolve("localhost", [&](std::vector<std::string> a, std::string e) {
        addresses = std::move(a);
        error = std::move(e);
        ran_on = std::this_thread::get_id();
    });
    CHECK(error == "not yet"); // never inside resolve()
    REQUIRE(owner.run_until([&] { return error != "not yet"; }));
    CHECK(ran_on == std::this_thread::get_id()); // the owner's thread, through post
    CHECK(error.empty());
    CHECK(std::find(addresses.begin(), addresses.end(), "127.0.0.1") != addresses.end());

    bool failed = false;
    resolver.resolve("no-such-host.invalid",
                     [&](std::vector<std::string> a, std::string e) { failed = a.empty() && !e.empty(); });
    REQUIRE(owner.run_until([&] { return failed; }));
}

// Fails if a lookup thread could call `post` after its resolver was destroyed (in the daemon that would be a
// strand that may be gone): the mailbox is closed under its lock in the destructor.
TEST_CASE("name resolver: once it is gone, no lookup thread posts any more", "[addresses]") {
    std::atomic<bool> gone{false}, posted_after{false};
    for (int i = 0; i < 50; ++i) {
        struct Mark { // destroyed after the resolver below
            std::atomic<bool>& gone;
            ~Mark() { gone = true; }
        } mark{gone};
        gone = false;
        NameResolver resolver([&](std::function<void()>) {
            if (gone) posted_after = true;
            return true;
        });
        resolver.resolve("localhost", [](std::vector<std::string>, std::string) {});
    }
    // The last lookups run out meanwhile (each a /etc/hosts lookup, as these).
    std::string error;
    for (int i = 0; i < 20; ++i)
        (void)NameResolver::lookup("localhost", error);
    CHECK_FALSE(posted_after);
}
