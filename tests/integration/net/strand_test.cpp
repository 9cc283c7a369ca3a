// The strand: posts from any thread, timers that never fire after cancel, and the stop contract the hub
// builds its shutdown on (strand.hpp).
#include <catch2/catch.hpp>

#include <atomic>
#include <latch>

#include "harness.hpp"
#include "net/timer.hpp"

using namespace ship::net;
using namespace ship::net::test;

TEST_CASE("post: closures from many threads all run on the strand, each thread's in order",
          "[net][integration]") {
    StrandThread st;
    constexpr int threads = 4, per_thread = 2000;
    std::vector<std::vector<int>> seen(threads); // strand-only
    int off_strand = 0;                          // strand-only
    std::atomic<int> refused{0}; // Catch assertions are not thread-safe: count, check after the join
    std::vector<std::thread> producers;
    std::latch go(threads);
    for (int t = 0; t < threads; ++t)
        producers.emplace_back([&, t] {
            go.arrive_and_wait();
            for (int i = 0; i < per_thread; ++i)
                if (!st.strand().post([&, t, i] {
                        if (!st.strand().is_on_strand()) ++off_strand;
                        seen[t].push_back(i);
                    }))
                    ++refused;
        });
    for (auto& p : producers)
        p.join();
    CHECK(refused == 0);
    CHECK_FALSE(st.strand().is_on_strand());
    const auto result = st.call([&] { return std::make_pair(seen, off_strand); });
    CHECK(result.second == 0);
    for (int t = 0; t < threads; ++t) {
        REQUIRE(result.first[t].size() == per_thread);
        for (int i = 0; i < per_thread; ++i)
            REQUIRE(result.first[t][i] == i);
    }
}

TEST_CASE("timers fire in order of expiry; a cancelled or destroyed timer never fires",
          "[net][integration]") {
    StrandThread st;
    std::vector<std::string> fired; // strand-only
    std::promise<void> done;
    auto& a = st.make<Timer>(st.strand());
    auto& b = st.make<Timer>(st.strand());
    auto& cancelled = st.make<Timer>(st.strand());
    auto& restarted = st.make<Timer>(st.strand());
    auto& last = st.make<Timer>(st.strand());
    st.call([&] {
        b.start(40ms, [&] { fired.push_back("b"); });
        a.start(20ms, [&] { fired.push_back("a"); });
        cancelled.start(10ms, [&] { fired.push_back("cancelled"); });
        cancelled.cancel();
        CHECK_FALSE(cancelled.pending());
        {
            Timer destroyed(st.strand());
            destroyed.start(5ms, [&] { fired.push_back("destroyed"); });
        }
        restarted.start(5ms, [&] { fired.push_back("restarted-early"); });
        restarted.start(60ms, [&] { fired.push_back("restarted"); });
        // A callback may re-arm its own timer.
        last.start(80ms, [&] {
            fired.push_back("last");
            last.start(1ms, [&] {
                fired.push_back("again");
                done.set_value();
            });
        });
    });
    REQUIRE(done.get_future().wait_for(deadline) == std::future_status::ready);
    CHECK(st.call([&] { return fired; }) == std::vector<std::string>{"a", "b", "restarted", "last", "again"});
}

TEST_CASE("stop: queued closures are dropped, normal timers silenced, shutdown timers run, finish ends run()",
          "[net][integration]") {
    StrandThread st;
    std::vector<std::string> events; // strand-only until joined
    auto& normal = st.make<Timer>(st.strand(), Timer::Kind::normal);
    auto& polite = st.make<Timer>(st.strand(), Timer::Kind::shutdown);
    std::promise<void> release;
    auto released = release.get_future().share();
    st.call([&] {
        normal.start(100ms, [&] { events.push_back("normal timer"); });
        st.strand().on_stop([&] {
            events.push_back(st.strand().stopping() ? "on_stop" : "on_stop while not stopping");
            polite.start(150ms, [&] {
                events.push_back("shutdown timer");
                st.strand().finish();
            });
        });
    });
    // Hold the strand inside a closure, queue another behind it, then stop: the second must not run.
    std::promise<void> holding;
    REQUIRE(st.strand().post([&, released] {
        holding.set_value();
        released.wait();
        events.push_back("held closure");
    }));
    REQUIRE(holding.get_future().wait_for(deadline) == std::future_status::ready);
    REQUIRE(st.strand().post([&] { events.push_back("queued before stop"); }));
    st.stop_source().request_stop();
    CHECK_FALSE(st.strand().post([&] { events.push_back("posted after stop"); }));
    release.set_value();
    st.stop_and_join();
    CHECK(events == std::vector<std::string>{"held closure", "on_stop", "shutdown timer"});
}

TEST_CASE("stop: without finish() the shutdown bound ends run(); without a handler it ends at once",
          "[net][integration]") {
    SECTION("bound") {
        StrandThread st(StrandOptions{300ms});
        int stops = 0;
        st.call([&] { st.strand().on_stop([&] { ++stops; }); });
        const auto started = std::chrono::steady_clock::now();
        st.stop_and_join();
        const auto took = std::chrono::steady_clock::now() - started;
        CHECK(stops == 1);
        CHECK(took >= 250ms);
        CHECK(took < 5s);
    }
    SECTION("no handler") {
        StrandThread st(StrandOptions{30s});
        const auto started = std::chrono::steady_clock::now();
        st.stop_and_join();
        CHECK(std::chrono::steady_clock::now() - started < 5s);
    }
}

TEST_CASE("stop: every connection gets one polite close, then the strand exits and nothing runs after",
          "[net][integration]") {
    // The pattern the hub implements: it owns both the Links it accepted and those it dialled; on_stop
    // closes each once, each on_closed removes it, the last one calls finish().
    const auto server_id = make_identity("server-stop");
    const auto client_id = make_identity("client-stop");
    StrandThread st;

    struct Owner : LinkHandler {
        Strand* strand = nullptr;
        std::vector<std::shared_ptr<Link>> links;
        std::vector<CloseInfo> closes;
        int opened = 0;
        std::promise<void> all_open;
        bool run_returned = false;
        int after_run = 0;
        void on_open(Link&) override {
            if (++opened == 6) all_open.set_value();
        }
        void on_message(Link&, std::vector<std::uint8_t>) override { after_run += run_returned; }
        void on_closed(Link& link, const CloseInfo& info) override {
            after_run += run_returned;
            closes.push_back(info);
            std::erase_if(links, [&](const auto& l) { return l.get() == &link; });
            if (links.empty() && strand->stopping()) strand->finish();
        }
    };
    auto& owner = st.make<Owner>();
    auto& client = st.make<Client>(st.strand(), client_config(client_id));
    Server* server = st.call([&] {
        owner.strand = &st.strand();
        ServerConfig config;
        config.certificate_pem = server_id.certificate_pem;
        config.private_key_pem = server_id.private_key_pem;
        config.listen_address = "127.0.0.1";
        config.admit = [&](const std::shared_ptr<Link>& link) {
            owner.links.push_back(link);
            return Admission::accept(owner);
        };
        auto s = std::make_shared<Server>(st.strand(), std::move(config));
        st.keep(s);
        for (int i = 0; i < 3; ++i)
            owner.links.push_back(client.dial({"127.0.0.1", s->port(), "/ship/", server_id.ski}, owner));
        st.strand().on_stop([&] {
            for (auto& link : std::vector(owner.links))
                link->close(4001, "shutting down");
        });
        return s.get();
    });
    (void)server;
    REQUIRE(owner.all_open.get_future().wait_for(deadline) == std::future_status::ready);

    const auto started = std::chrono::steady_clock::now();
    st.stop_and_join();
    CHECK(std::chrono::steady_clock::now() - started < 2s); // finish(), not the 3 s bound
    CHECK(owner.links.empty());
    REQUIRE(owner.closes.size() == 6);
    for (const auto& info : owner.closes) {
        CHECK(info.by == CloseInfo::By::local);
        CHECK(info.code == 4001);
        CHECK(info.reason == "shutting down");
        CHECK(info.was_open);
    }
    owner.run_returned = true;
    CHECK(owner.after_run == 0);
}
