#include "bus_connection.hpp"

#include <poll.h>

#include <chrono>
#include <exception>

#include <sdbus-c++/Error.h>
#include <spdlog/spdlog.h>

namespace ship::daemon {

namespace {

int loop_events(short poll_events) {
    int events = 0;
    if (poll_events & POLLIN) events |= net::IoWatch::readable;
    if (poll_events & POLLOUT) events |= net::IoWatch::writable;
    return events;
}

} // namespace

BusConnection::BusConnection(net::EventLoop& loop, std::unique_ptr<sdbus::IConnection> connection,
                             FailureHandler on_failure)
    : loop_(loop)
    , connection_(std::move(connection))
    , on_failure_(std::move(on_failure))
    , watch_(loop, connection_->getEventLoopPollData().fd, [this](int) { process(); })
    , timeout_(loop)
    , hook_(loop, [this] { turn(); }) {
    watch_.set_events(net::IoWatch::readable);
}

BusConnection::~BusConnection() = default;

void BusConnection::before_wait(std::function<void()> flush) {
    flushers_.push_back(std::move(flush));
}

void BusConnection::process() {
    if (failed_ || closed_) return;
    try {
        // One message per call; a burst is taken in one go, so a wake-up is not spent per message.
        while (connection_->processPendingRequest()) {
        }
    } catch (const std::exception& e) {
        fail(e.what());
    }
}

void BusConnection::turn() {
    if (failed_ || closed_) return;
    for (auto& flush : flushers_)
        flush();
    try {
        // Messages may already sit read in sd-bus's queue (a synchronous call read past its reply): the
        // timeout is then 0, and they are handled now rather than after the next wake-up.
        for (int round = 0; round < 16; ++round) {
            const auto data = connection_->getEventLoopPollData();
            watch_.set_events(loop_events(data.events));
            const auto relative = data.getRelativeTimeout();
            if (!relative) {
                timeout_.cancel();
                return;
            }
            if (relative->count() > 0) {
                timeout_.start(*relative, [this] { process(); });
                return;
            }
            process();
            if (failed_) return;
        }
        timeout_.start(std::chrono::microseconds(0), [this] { process(); });
    } catch (const std::exception& e) {
        fail(e.what());
    }
}

void BusConnection::fail(const std::string& why) {
    if (failed_) return;
    failed_ = true;
    watch_.set_events(0);
    timeout_.cancel();
    spdlog::error("D-Bus: the bus connection failed: {}", why);
    if (on_failure_) on_failure_(why);
}

void BusConnection::close(const std::string& name, std::chrono::milliseconds timeout) {
    if (closed_) return;
    closed_ = true;
    watch_.set_events(0);
    timeout_.cancel();
    if (failed_) return;
    try {
        connection_->releaseName(name);
    } catch (const sdbus::Error& e) {
        spdlog::debug("D-Bus: releasing {}: {}", name, e.what());
    }
    const auto until = std::chrono::steady_clock::now() + timeout;
    try {
        for (;;) {
            while (connection_->processPendingRequest()) {
            }
            const auto data = connection_->getEventLoopPollData();
            if (!(data.events & POLLOUT)) break; // all written
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                spdlog::warn("D-Bus: could not write everything before leaving");
                break;
            }
            // Stopping: nothing else runs on the loop any more, so waiting here blocks nobody.
            pollfd fd{data.fd, data.events, 0};
            poll(&fd, 1, static_cast<int>(left.count()));
        }
    } catch (const std::exception& e) {
        spdlog::debug("D-Bus: while leaving: {}", e.what());
    }
}

} // namespace ship::daemon
