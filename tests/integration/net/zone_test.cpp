// IPv6 link-local dialling with a zone ("fe80::1%lo"), in a network namespace this test makes for itself
// (loopback gets fe80::1/64 there). Needs root for the namespace; without it the test says so and skips.
#include <catch2/catch.hpp>

#include <sched.h>
#include <unistd.h>

#include <cstdlib>

#include "harness.hpp"

using namespace ship::net;
using namespace ship::net::test;

TEST_CASE("a dial to fe80::1%lo reaches the server; without the zone it fails", "[net][integration]") {
    // unshare() moves only this thread (and threads it starts later, like the strand's) into the new
    // namespace; the test executable holds nothing else.
    if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) {
        WARN("skipped: a private network namespace needs root");
        return;
    }
    REQUIRE(std::system("ip link set lo up && ip -6 addr add fe80::1/64 dev lo nodad") == 0);

    const auto server_id = make_identity("server-zone");
    const auto client_id = make_identity("client-zone");
    StrandThread st;
    auto& acceptor = st.make<Acceptor>(st.strand(), server_id, LinkSettings{}, false, ""); // every address
    auto& client = st.make<Client>(st.strand(), client_config(client_id));

    auto& with_zone = st.recorder();
    Link* link = st.call([&] {
        auto l = client.dial({"fe80::1%lo", acceptor.port(), "/ship/", server_id.ski}, with_zone);
        st.keep(l);
        return l.get();
    });
    REQUIRE(with_zone.wait_open());
    st.call([&] { CHECK(link->remote_address() == "[fe80::1%lo]:" + std::to_string(acceptor.port())); });
    auto accepted = acceptor.wait_accepted(0);
    REQUIRE(accepted);
    st.call([&] { CHECK(accepted->link->remote_address().rfind("[fe80::1%lo]:", 0) == 0); });

    auto& without_zone = st.recorder();
    st.call([&] {
        st.keep(client.dial({"fe80::1", acceptor.port(), "/ship/", server_id.ski}, without_zone));
    });
    auto closed = without_zone.wait_closed();
    REQUIRE(closed);
    CHECK_FALSE(closed->was_open);
    INFO(closed->reason);
    CHECK(acceptor.accepted_count() == 1);
}
