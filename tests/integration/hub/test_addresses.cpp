// A peer announced with a host name, an IPv4 and an IPv6 link-local address: the hub dials one address at
// a time, the link-local one with its zone, falls back when one fails, starts next time with what worked,
// and resolves a name off the strand. Two network namespaces this test makes (root only), joined by a veth
// pair; only addresses inside them are used.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>

#include "hub_harness.hpp"

namespace ship::hub::it {
namespace {

int sh(const std::string& command) {
    return std::system(command.c_str());
}

// Namespaces A (the peer) and B (the hub), a veth pair between them (`va` in A, `vb` in B) with fixed
// link-local addresses fe80::a and fe80::b, and IPv4 169.254.77.1/.2. The calling thread can enter either;
// threads it starts (a Node's strand) stay where they were started. Removed on destruction.
class Namespaces {
public:
    Namespaces() {
        const std::string id = std::to_string(::getpid() % 100000);
        a_ = "shipd17a" + id;
        b_ = "shipd17b" + id;
        va_ = "va" + id;
        vb_ = "vb" + id;
        home_ = ::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        ok_ =
            ::geteuid() == 0 && home_ >= 0 && sh("ip netns add " + a_) == 0 &&
            sh("ip netns add " + b_) == 0 &&
            sh("ip link add " + va_ + " netns " + a_ + " type veth peer name " + vb_ + " netns " + b_) == 0 &&
            sh("ip -n " + a_ + " link set lo up && ip -n " + a_ + " link set " + va_ + " up") == 0 &&
            sh("ip -n " + b_ + " link set lo up && ip -n " + b_ + " link set " + vb_ + " up") == 0 &&
            sh("ip -n " + a_ + " -6 addr add fe80::a/64 dev " + va_ + " nodad") == 0 &&
            sh("ip -n " + b_ + " -6 addr add fe80::b/64 dev " + vb_ + " nodad") == 0 &&
            sh("ip -n " + a_ + " addr add 169.254.77.1/24 dev " + va_) == 0 &&
            sh("ip -n " + b_ + " addr add 169.254.77.2/24 dev " + vb_) == 0;
    }
    ~Namespaces() {
        enter_home();
        sh("ip netns del " + a_ + " 2>/dev/null");
        sh("ip netns del " + b_ + " 2>/dev/null");
        if (home_ >= 0) ::close(home_);
    }
    bool ok() const { return ok_; }
    void enter_a() { enter("/var/run/netns/" + a_); }
    void enter_b() { enter("/var/run/netns/" + b_); }
    void enter_home() {
        if (home_ >= 0) ::setns(home_, CLONE_NEWNET);
    }
    // The peer's link-local address as the hub in B sees it: with B's interface as zone.
    std::string peer_link_local() const { return "fe80::a%" + vb_; }

private:
    void enter(const std::string& path) {
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        REQUIRE(::setns(fd, CLONE_NEWNET) == 0);
        ::close(fd);
    }
    std::string a_, b_, va_, vb_;
    int home_ = -1;
    bool ok_ = false;
};

// The first event the peer's hub reported about `ski`: when our link reached it.
std::optional<Clock::time_point> first_seen(Node& node, const std::string& ski) {
    for (const auto& e : node.log().events())
        if (e.ski == ski && e.kind == Event::Kind::state) return e.at;
    return std::nullopt;
}

} // namespace

// Fails if the hub dialled two addresses at once (the peer would see our link while the first dial still
// ran), dialled the link-local address without its zone (EINVAL), gave up after the first failure, or
// did not start with the address that worked the next time.
TEST_CASE("a peer with a host name, an IPv4 and a link-local address is dialled one address at a time",
          "[hub][addresses][netns]") {
    Namespaces ns;
    if (!ns.ok()) {
        WARN("skipped: network namespaces need root and iproute2");
        return;
    }
    const auto identities = larger_and_smaller();

    ns.enter_a();
    NodeOptions peer_options;
    peer_options.listen_address = ""; // every address of A: the link-local one too
    Node peer("peer", identities.second, peer_options);

    ns.enter_b();
    // The announced IPv4 address leads to something that takes TCP and never answers TLS (a stale address,
    // another device): the dial there stays in flight until the connect timeout.
    Tarpit stale(peer.port(), "127.0.0.1");
    NodeOptions options;
    options.connect_timeout = 500ms;
    // The redial after the Disconnect below comes within 0–300 ms.
    options.seed = seed_with_draws({{0, 0ms, 300ms}});
    Node hub("hub", identities.first, options);
    ns.enter_home();

    REQUIRE_FALSE(peer.call([&](Hub& h) { return h.trust(hub.ski()); }));
    DiscoveredService announced;
    announced.ski = peer.ski();
    announced.ship_id = "hubit-peer";
    announced.host_name = "shipd17-no-such-host.invalid";
    announced.addresses = {"127.0.0.1", ns.peer_link_local()}; // best first, as lib/mdns orders them
    announced.host = announced.addresses.front();
    announced.port = peer.port();
    announced.path = "/ship/";
    const auto start = Clock::now();
    REQUIRE_FALSE(hub.call([&](Hub& h) {
        h.set_discovered({announced});
        return h.trust(peer.ski());
    }));

    REQUIRE(hub.log().wait_count(Event::Kind::connected, peer.ski(), 1));
    REQUIRE(peer.log().wait_count(Event::Kind::connected, hub.ski(), 1));
    // The IPv4 dial ran to its timeout, and only then did a link reach the peer (over link-local).
    CHECK(stale.accepted() == 1);
    REQUIRE(stale.wait_hung_up(1));
    const auto hung_up = stale.last_hung_up_at();
    const auto reached = first_seen(peer, hub.ski());
    REQUIRE(hung_up);
    REQUIRE(reached);
    INFO("IPv4 dial given up after "
         << std::chrono::duration_cast<std::chrono::milliseconds>(*hung_up - start).count()
         << " ms, the peer reached after "
         << std::chrono::duration_cast<std::chrono::milliseconds>(*reached - start).count() << " ms");
    CHECK(*hung_up - start >= 450ms);
    CHECK(*reached >= *hung_up);
    CHECK(hub.call([&](Hub& h) {
        const auto p = h.peer(peer.ski());
        return p && h.registry().is_confirmed(peer.ski());
    }));
    REQUIRE(same_link(hub, peer, "link-local"));

    // What worked goes first next time: after a Disconnect the redial takes the link-local address at once.
    REQUIRE_FALSE(hub.call([&](Hub& h) { return h.disconnect(peer.ski(), "test: once more"); }));
    REQUIRE(hub.log().wait_count(Event::Kind::connected, peer.ski(), 2));
    CHECK(stale.accepted() == 1);
    hub.stop();
    peer.stop();
    CHECK(to_string(hub.log().violations()) == "");
}

// A peer announced by host name only: the name is resolved off the strand and its address dialled.
TEST_CASE("a peer announced by host name only is resolved and dialled", "[hub][addresses][netns]") {
    Namespaces ns;
    if (!ns.ok()) {
        WARN("skipped: network namespaces need root and iproute2");
        return;
    }
    const auto identities = larger_and_smaller();
    ns.enter_a(); // both in A: "localhost" there is A's loopback, where the peer listens
    NodeOptions peer_options;
    peer_options.listen_address = "";
    Node peer("peer", identities.second, peer_options);
    Node hub("hub", identities.first);
    ns.enter_home();
    REQUIRE_FALSE(peer.call([&](Hub& h) { return h.trust(hub.ski()); }));
    DiscoveredService announced;
    announced.ski = peer.ski();
    announced.host_name = "localhost";
    announced.host = "localhost";
    announced.port = peer.port();
    announced.path = "/ship/";
    REQUIRE_FALSE(hub.call([&](Hub& h) {
        h.set_discovered({announced});
        return h.trust(peer.ski());
    }));
    REQUIRE(hub.log().wait_count(Event::Kind::connected, peer.ski(), 1));
    REQUIRE(same_link(hub, peer, "by-name"));
    hub.stop();
    peer.stop();
}

} // namespace ship::hub::it
