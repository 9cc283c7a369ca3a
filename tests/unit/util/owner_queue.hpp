// The owner's thread in miniature for unit tests: post() queues closures from any thread (as the disk writer
// does), the test thread runs them. Waits are driven by arrivals and end at a deadline.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>

namespace ship::test {

class OwnerQueue {
public:
    using Post = std::function<void(std::function<void()>)>;

    // The post function to hand to a DiskWriter or TrustStore; the queue must outlive them.
    Post post() {
        return [this](std::function<void()> fn) {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(fn));
            arrived_.notify_all();
        };
    }

    // Runs closures as they arrive until `done()` holds; false if `timeout` passes first.
    bool run_until(const std::function<bool()>& done,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto until = std::chrono::steady_clock::now() + timeout;
        while (!done()) {
            std::function<void()> next;
            {
                std::unique_lock lock(mutex_);
                if (!arrived_.wait_until(lock, until, [this] { return !queue_.empty(); })) return done();
                next = std::move(queue_.front());
                queue_.pop_front();
            }
            next();
        }
        return true;
    }

    // Runs what is queued now (and what those closures queue), without waiting; returns how many ran.
    std::size_t run_ready() {
        std::size_t n = 0;
        for (;;) {
            std::function<void()> next;
            {
                std::lock_guard lock(mutex_);
                if (queue_.empty()) return n;
                next = std::move(queue_.front());
                queue_.pop_front();
            }
            next();
            ++n;
        }
    }

    std::size_t size() {
        std::lock_guard lock(mutex_);
        return queue_.size();
    }

private:
    // Unavoidable: post() is called from the disk writer's worker while the test thread takes closures out.
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::deque<std::function<void()>> queue_;
};

} // namespace ship::test
