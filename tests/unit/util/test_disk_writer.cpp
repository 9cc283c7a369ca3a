// util::DiskWriter: jobs run in order on a worker that exists only while there is work, results come back
// through the owner's post function, destruction drains within its bound.
#include <catch2/catch.hpp>

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "../util/owner_queue.hpp"
#include "util/disk_writer.hpp"

using ship::test::OwnerQueue;
using ship::util::DiskWriter;
using namespace std::chrono_literals;

namespace {

long this_tid() {
    return static_cast<long>(::syscall(SYS_gettid));
}

bool task_exists(long tid) {
    return std::filesystem::exists("/proc/self/task/" + std::to_string(tid));
}

// A thread's entry leaves /proc only once the kernel has reaped it, shortly after it returned; there is no
// event for that, so this reads until it is gone or the deadline passes.
bool task_gone_within(long tid, std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (task_exists(tid)) {
        if (std::chrono::steady_clock::now() >= until) return false;
        std::this_thread::yield();
    }
    return true;
}

// Collects what the jobs did, in the order they did it (jobs run on the worker, checks on the test thread).
struct Journal {
    std::mutex mutex; // unavoidable: jobs add from the worker thread, the test reads from its own
    std::vector<int> ran;
    std::vector<long> tids;
    void add(int n) {
        std::lock_guard lock(mutex);
        ran.push_back(n);
        tids.push_back(this_tid());
    }
    std::vector<int> order() {
        std::lock_guard lock(mutex);
        return ran;
    }
    long last_tid() {
        std::lock_guard lock(mutex);
        return tids.back();
    }
};

} // namespace

TEST_CASE("disk writer: jobs run in order off the owner's thread; results come back through post",
          "[disk_writer]") {
    OwnerQueue owner;
    Journal journal;
    std::vector<std::pair<int, std::optional<std::string>>> results; // owner thread only
    DiskWriter writer(owner.post());
    for (int i = 0; i < 20; ++i)
        writer.submit(
            [&journal, i] {
                journal.add(i);
                if (i % 7 == 3) throw std::runtime_error("disk full at " + std::to_string(i));
            },
            [&results, i](std::optional<std::string> error) { results.emplace_back(i, std::move(error)); });
    REQUIRE(owner.run_until([&] { return results.size() == 20; }));

    std::vector<int> expected(20);
    for (int i = 0; i < 20; ++i)
        expected[i] = i;
    CHECK(journal.order() == expected);
    for (int i = 0; i < 20; ++i) {
        CHECK(results[i].first == i);
        if (i % 7 == 3)
            CHECK(results[i].second == "disk full at " + std::to_string(i));
        else
            CHECK_FALSE(results[i].second);
    }
    for (long tid : journal.tids) // the worker is idle: every job has run
        CHECK(tid != this_tid());
    CHECK(writer.jobs_completed() == 20);
}

TEST_CASE("disk writer: the worker thread exists only while there is work", "[disk_writer]") {
    OwnerQueue owner;
    Journal journal;
    int done = 0;
    DiskWriter writer(owner.post());
    CHECK_FALSE(writer.worker_running());
    CHECK(writer.threads_started() == 0);

    for (int round = 1; round <= 3; ++round) {
        INFO("round " << round);
        // The first job holds the worker until all five are queued, so this round needs exactly one thread.
        std::promise<void> queued;
        auto all_queued = queued.get_future().share();
        writer.submit([all_queued] { all_queued.wait(); });
        for (int i = 0; i < 5; ++i)
            writer.submit([&journal, i] { journal.add(i); }, [&done](auto) { ++done; });
        queued.set_value();
        REQUIRE(owner.run_until([&] { return done == 5 * round; }));
        REQUIRE(writer.wait_idle(10s));
        CHECK_FALSE(writer.worker_running());
        // The thread that ran this round's jobs has ended, although nobody joined it yet.
        const long tid = journal.last_tid();
        CHECK(task_gone_within(tid, 5s));
        CHECK(writer.threads_started() == static_cast<std::uint64_t>(round));
    }
}

TEST_CASE("disk writer: submit never waits for a job that is running", "[disk_writer]") {
    OwnerQueue owner;
    std::promise<void> release;
    auto released = release.get_future().share();
    std::atomic<bool> started{false};
    std::promise<void> running;
    auto is_running = running.get_future();
    DiskWriter writer(owner.post());
    writer.submit([&] {
        running.set_value();
        released.wait();
    });
    is_running.wait();
    // The first job blocks until the test releases it: if submit() waited for it, this would never return.
    const auto before = std::chrono::steady_clock::now();
    writer.submit([&] { started = true; });
    CHECK(std::chrono::steady_clock::now() - before < 1s);
    CHECK_FALSE(started.load());
    release.set_value();
    REQUIRE(writer.wait_idle(10s));
    CHECK(started.load());
}

TEST_CASE("disk writer: destruction runs every queued job (a clean stop loses nothing)", "[disk_writer]") {
    OwnerQueue owner;
    Journal journal;
    {
        DiskWriter writer(owner.post());
        for (int i = 0; i < 50; ++i)
            writer.submit([&journal, i] {
                std::this_thread::yield();
                journal.add(i);
            });
        // The owner runs nothing before the writer goes away.
    }
    CHECK(journal.order().size() == 50);
}

TEST_CASE("disk writer: destruction is bounded when a job is stuck; queued jobs are dropped",
          "[disk_writer]") {
    OwnerQueue owner;
    std::promise<void> release;
    auto released = release.get_future().share();
    std::promise<void> running, finished;
    auto is_running = running.get_future();
    auto stuck_finished = finished.get_future();
    std::atomic<bool> second_ran{false};
    const auto bound = 200ms;
    auto writer = std::make_unique<DiskWriter>(owner.post(), bound);
    writer->submit([&, released] {
        running.set_value();
        released.wait();
        finished.set_value();
    });
    writer->submit([&] { second_ran = true; });
    is_running.wait();

    const auto before = std::chrono::steady_clock::now();
    writer.reset();
    const auto took = std::chrono::steady_clock::now() - before;
    CHECK(took >= bound);
    CHECK(took < 5s);
    release.set_value();
    REQUIRE(stuck_finished.wait_for(10s) == std::future_status::ready);
    CHECK_FALSE(second_ran.load());
}
