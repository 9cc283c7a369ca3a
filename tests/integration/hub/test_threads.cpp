// D-Bus-like calls from other threads race with connection churn (bug class 4): every call is posted to
// the strand and must come back within the deadline, and the hub stays live and consistent. Run under TSan.
#include <atomic>
#include <random>

#include <catch2/catch.hpp>

#include "hub_harness.hpp"

namespace ship::hub::it {

// Fails if any call from another thread did not return within the deadline (Node::call's watchdog aborts the
// test: a deadlock such as ship-go's connection-map/timer-map inversion), if any event came off the strand
// or broke the alternation, if the pair did not settle afterwards, or (under TSan) on any data race.
TEST_CASE("bug class 4: calls from other threads racing with connection churn never deadlock",
          "[hub][threads]") {
    const auto identities = larger_and_smaller();
    const tls::Identity& larger = identities.first;
    const tls::Identity& smaller = identities.second;
    NodeOptions options;
    options.passive_wait = 300ms;
    options.seed = 41;
    Node a("a", larger, options);
    options.seed = 42;
    Node b("b", smaller, options);
    a.trust_and_connect(b);
    b.trust_and_connect(a);
    REQUIRE(a.log().wait_count(Event::Kind::connected, b.ski(), 1));

    // Churn from outside: a scripted peer with b's certificate keeps dialling a (double connections).
    PeerPool pool;
    const auto impostor = pool.add_identity(b.identity(), "hubit-b");

    std::atomic<bool> go{false};
    std::atomic<int> calls{0};
    auto caller = [&](Node& node, const Node& other, unsigned seed) {
        std::minstd_rand random(seed);
        while (!go.load())
            std::this_thread::yield();
        for (int i = 0; i < 120; ++i) {
            switch (random() % 8) {
            case 0:
                node.call([&](Hub& h) { return h.trust(other.ski()); });
                break;
            case 1:
                node.call([&](Hub& h) { return h.untrust(other.ski()); });
                break;
            case 2:
                node.call([&](Hub& h) { return h.connect(other.ski(), "127.0.0.1", other.port()); });
                break;
            case 3:
                node.call([&](Hub& h) { return h.disconnect(other.ski(), "test: churn"); });
                break;
            case 4:
                node.call([&](Hub& h) {
                    return h.send_data(other.ski(), R"({"datagram":{"header":{},"payload":{"churn":true}}})");
                });
                break;
            case 5:
                node.call([](Hub& h) { return h.list_peers().size(); });
                break;
            case 6:
                node.call([&](Hub& h) { return h.peer(other.ski()).has_value(); });
                break;
            default:
                node.call([&](Hub& h) { return h.cancel_pairing(other.ski()); });
                break;
            }
            ++calls;
        }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 3; ++t)
        threads.emplace_back(caller, std::ref(a), std::cref(b), 100 + t);
    for (unsigned t = 0; t < 2; ++t)
        threads.emplace_back(caller, std::ref(b), std::cref(a), 200 + t);
    threads.emplace_back([&] {
        while (!go.load())
            std::this_thread::yield();
        for (int i = 0; i < 30; ++i)
            pool.dial(impostor, a.port(), a.ski(), i % 2 ? PeerPool::Mode::ship : PeerPool::Mode::silent);
    });
    go = true;
    for (auto& t : threads)
        t.join();
    CHECK(calls.load() == 5 * 120);

    // Afterwards the pair settles again: both trust each other and each ends with a confirmed connection
    // for the other's SKI (on a, possibly one of the impostor's, which carries b's certificate).
    for (std::size_t i = 0; i < pool.outcomes().size(); ++i)
        pool.close(i, net::close_normal, "test: churn over");
    REQUIRE(pool.wait([](const auto& all) {
        return std::all_of(all.begin(), all.end(), [](const auto& o) { return o.closed.has_value(); });
    }));
    a.trust_and_connect(b);
    b.trust_and_connect(a);
    REQUIRE(eventually(a.log(), [&] {
        return a.call([&](Hub& h) { return h.registry().is_confirmed(b.ski()); }) &&
               b.call([&](Hub& h) { return h.registry().is_confirmed(a.ski()); });
    }));
    CHECK(same_link(a, b, "after-churn"));

    CHECK(a.stop() < 10s);
    CHECK(b.stop() < 10s);
    CHECK(a.log().connected_skis().empty());
    CHECK(b.log().connected_skis().empty());
    CHECK(to_string(a.log().violations()) == "");
    CHECK(to_string(b.log().violations()) == "");
}

} // namespace ship::hub::it
