// The hub's loop on the real strand: stop, finish and posts are net::Strand's, timers are StrandTimers (one
// set silenced by stop, one that still fires while the strand drains).
#pragma once

#include "hub/lws/strand_timers.hpp"
#include "hub/ports.hpp"
#include "net/strand.hpp"

namespace ship::hub {

class StrandLoop final : public HubLoop {
public:
    explicit StrandLoop(net::Strand& strand)
        : strand_(strand)
        , timers_(strand)
        , closing_timers_(strand, net::Timer::Kind::shutdown) {}

    const std::stop_token& stop_token() const override { return strand_.stop_token(); }
    void on_stop(std::function<void()> handler) override { strand_.on_stop(std::move(handler)); }
    void finish() override { strand_.finish(); }
    bool post(std::function<void()> fn) override { return strand_.post(std::move(fn)); }
    TimerService& timers() override { return timers_; }
    TimerService& closing_timers() override { return closing_timers_; }

private:
    net::Strand& strand_;
    StrandTimers timers_;
    StrandTimers closing_timers_;
};

} // namespace ship::hub
