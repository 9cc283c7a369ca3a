// The D-Bus connection serviced on the event loop: its fd is watched for what sd-bus asks (readable, and
// writable while messages wait unsent), its timeout runs on a loop timer, both re-armed before every wait.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <sdbus-c++/IConnection.h>

#include "net/event_loop.hpp"

namespace ship::daemon {

// Loop thread only, like everything sdbus-c++ is asked here: handlers of objects on this connection run from
// inside process(), on the loop.
class BusConnection {
public:
    // Called once if the connection fails for good (the bus went away); the loop keeps running.
    using FailureHandler = std::function<void(const std::string& why)>;

    BusConnection(net::EventLoop& loop, std::unique_ptr<sdbus::IConnection> connection,
                  FailureHandler on_failure);
    ~BusConnection();
    BusConnection(const BusConnection&) = delete;
    BusConnection& operator=(const BusConnection&) = delete;

    sdbus::IConnection& connection() { return *connection_; }

    // Runs before every wait of the loop, before the connection is re-armed: where work batched during the
    // turn is turned into messages (so they are flushed in the same turn).
    void before_wait(std::function<void()> flush);

    // Leaving: gives up `name` (so new callers get "no such name" from the bus, not a call nobody answers),
    // handles every call that came in until then — the handlers answer them, shipd is stopping — and writes
    // out everything queued, bounded by `timeout`. Nothing is serviced afterwards.
    void close(const std::string& name, std::chrono::milliseconds timeout);

private:
    void process();
    void turn();
    void fail(const std::string& why);

    net::EventLoop& loop_;
    std::unique_ptr<sdbus::IConnection> connection_;
    FailureHandler on_failure_;
    std::vector<std::function<void()>> flushers_;
    net::IoWatch watch_;
    net::LoopTimer timeout_;
    net::TurnHook hook_;
    bool failed_ = false, closed_ = false;
};

} // namespace ship::daemon
