// The worker thread lives only while its queue has work: started on demand, gone when the queue is empty.
#include "util/disk_writer.hpp"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <system_error>
#include <utility>

#include <spdlog/spdlog.h>

namespace ship::util {

namespace {

struct Job {
    std::function<void()> io;
    DiskWriter::Done done;
};

// Posts `done(error)`; a post that throws loses only this result (the owner learns nothing either way).
void deliver(const DiskWriter::Post& post, DiskWriter::Done done, std::optional<std::string> error) noexcept {
    if (!done) return;
    try {
        post([done = std::move(done), error = std::move(error)] { done(error); });
    } catch (const std::exception& e) {
        spdlog::warn("disk writer: could not hand a result to its owner: {}", e.what());
    }
}

} // namespace

struct DiskWriter::Shared {
    // The writer's one lock. It cannot be avoided: the queue and the `running` flag pass between the owner's
    // thread and the worker, and submit() must decide atomically whether the running worker will still see
    // its job or a new worker must start. It is never held during a job's I/O. The worker also holds it while
    // it posts a result, so that once the destructor has set `abandoned` no result can reach an owner that
    // is gone.
    mutable std::mutex mutex;
    mutable std::condition_variable idle; // `running` became false
    std::deque<Job> queue;
    bool running = false;   // a worker exists and will take the next queued job
    bool abandoned = false; // the owner is gone: post nothing, start nothing
    std::uint64_t started = 0, completed = 0;
    Post post;

    static void work(const std::shared_ptr<Shared>& self) {
        for (;;) {
            Job job;
            {
                std::lock_guard lock(self->mutex);
                if (self->queue.empty() || self->abandoned) {
                    // Leaving the loop is the last thing this thread does: a join after this returns at once.
                    self->running = false;
                    self->idle.notify_all();
                    return;
                }
                job = std::move(self->queue.front());
                self->queue.pop_front();
            }
            std::optional<std::string> error;
            try {
                job.io();
            } catch (const std::exception& e) {
                error = e.what();
            } catch (...) {
                error = "unknown error";
            }
            std::lock_guard lock(self->mutex);
            ++self->completed;
            if (!self->abandoned) deliver(self->post, std::move(job.done), std::move(error));
        }
    }
};

DiskWriter::DiskWriter(Post post, std::chrono::milliseconds drain_bound)
    : shared_(std::make_shared<Shared>())
    , drain_bound_(drain_bound) {
    shared_->post = std::move(post);
}

DiskWriter::~DiskWriter() {
    std::deque<Job> dropped;
    bool drained = false;
    {
        std::unique_lock lock(shared_->mutex);
        drained = shared_->idle.wait_for(lock, drain_bound_, [this] { return !shared_->running; });
        if (!drained) {
            shared_->abandoned = true;
            dropped = std::move(shared_->queue);
        }
    }
    if (!worker_.joinable()) return;
    if (drained) {
        worker_.join();
        return;
    }
    // Stuck in the kernel (a dead disk, a hung NFS server): waiting longer would hold the daemon's exit for
    // ever. The thread owns its share of the state and posts nothing once `abandoned` is set.
    spdlog::error("disk writer: a write did not finish within {} ms of shutdown; {} queued write(s) dropped",
                  drain_bound_.count(), dropped.size());
    worker_.detach();
}

void DiskWriter::submit(std::function<void()> io, Done done) {
    {
        std::lock_guard lock(shared_->mutex);
        shared_->queue.push_back(Job{std::move(io), std::move(done)});
        if (shared_->running) return; // the worker takes it after the jobs before it
        shared_->running = true;
        ++shared_->started;
    }
    // The previous worker, if any, has left its loop (running was false): this join does not wait on I/O.
    if (worker_.joinable()) worker_.join();
    try {
        worker_ = std::thread([shared = shared_] { Shared::work(shared); });
    } catch (const std::system_error& e) {
        std::deque<Job> failed;
        {
            std::lock_guard lock(shared_->mutex);
            shared_->running = false;
            --shared_->started;
            failed = std::move(shared_->queue);
            shared_->idle.notify_all();
        }
        const std::string why = std::string("could not start the disk writer thread: ") + e.what();
        for (auto& job : failed)
            deliver(shared_->post, std::move(job.done), why);
    }
}

bool DiskWriter::worker_running() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->running;
}

std::uint64_t DiskWriter::threads_started() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->started;
}

std::uint64_t DiskWriter::jobs_completed() const {
    std::lock_guard lock(shared_->mutex);
    return shared_->completed;
}

bool DiskWriter::wait_idle(std::chrono::milliseconds timeout) const {
    std::unique_lock lock(shared_->mutex);
    return shared_->idle.wait_for(lock, timeout, [this] { return !shared_->running; });
}

} // namespace ship::util
