// Runs file I/O (write, fsync, rename) off the owner's thread, one job at a time in submission order, and
// hands each result back through the owner's post function. A worker thread exists only while there is work.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace ship::util {

// Owner-thread object: construct, submit and destroy it on one thread (the strand in the daemon). Jobs touch
// only files and data captured for them, never the owner's state; their results come back only as the
// `done` closures, run wherever `post` runs them (on the owner's thread).
//
// Threads: the worker is started by submit() when no worker runs, and ends by itself as soon as its queue is
// empty, so at rest there is no extra thread. The finished thread is joined by the next submit() that starts
// a new one, or by the destructor; it has already left its loop then, so the join does not wait on I/O.
class DiskWriter {
public:
    // Hands a closure to the owner's thread. Called from the worker; must be thread-safe and must not wait
    // for the owner (it may be called while the owner is inside submit()). It may drop the closure (a
    // stopping strand does): the job's result is then simply not delivered.
    using Post = std::function<void(std::function<void()>)>;
    // The job's outcome: nullopt, or the what() of the exception the I/O closure threw.
    using Done = std::function<void(std::optional<std::string> error)>;

    static constexpr std::chrono::milliseconds default_drain_bound{10'000};

    explicit DiskWriter(Post post, std::chrono::milliseconds drain_bound = default_drain_bound);
    // Waits until every queued job has run (completions are still posted), at most `drain_bound`; after
    // that, jobs not yet started are dropped and a job stuck in the kernel is left to finish on its own
    // thread, which then posts nothing.
    ~DiskWriter();
    DiskWriter(const DiskWriter&) = delete;
    DiskWriter& operator=(const DiskWriter&) = delete;

    // Queues `io` to run on the worker after every job submitted before it; then `done` (may be empty) is
    // posted with the outcome. Never blocks on I/O and never throws because of it: if no thread can be
    // started, the queued jobs' `done` are posted with that error instead.
    void submit(std::function<void()> io, Done done = {});

    // For tests and diagnostics (any thread).
    bool worker_running() const;           // a worker thread exists and has not left its loop
    std::uint64_t threads_started() const; // workers started since construction
    std::uint64_t jobs_completed() const;  // jobs whose I/O has run (successfully or not)
    // Blocks the caller until no job is queued or running, at most `timeout`; true if idle. Not for the
    // owner's thread in production: it waits on disk I/O.
    bool wait_idle(std::chrono::milliseconds timeout) const;

    struct Shared; // the queue the owner and the worker share

private:
    std::shared_ptr<Shared> shared_;
    std::chrono::milliseconds drain_bound_;
    std::thread worker_; // owner thread only
};

} // namespace ship::util
