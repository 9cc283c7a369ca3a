// Method replies that may have to wait (for the disk, for a dial's outcome): answered exactly once, and
// ShuttingDown if whoever holds one drops it unanswered. Loop thread only.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include <sdbus-c++/sdbus-c++.h>
#include <spdlog/spdlog.h>

#include "bus_context.hpp"
#include "dbus_errors.hpp"

namespace ship::daemon {

// Registered in the context while unanswered, so the service answers it ShuttingDown when it closes (after
// the connection is gone nobody could, and its holder — the trust store, a pending Connect — may outlive it).
class DeferredReply {
public:
    DeferredReply(sdbus::Result<>&& result, BusContext& context)
        : result_(std::in_place, std::move(result))
        , context_(context)
        , give_up_([this] { answer(shutting_down_error()); }) {
        context_.waiting_replies.insert(&give_up_);
    }
    DeferredReply(const DeferredReply&) = delete;
    DeferredReply& operator=(const DeferredReply&) = delete;
    ~DeferredReply() { answer(shutting_down_error()); }

    void answer(const ship::hub::Result& outcome) {
        if (outcome) return answer(to_dbus_error(*outcome));
        if (std::exchange(answered_, true)) return;
        context_.waiting_replies.erase(&give_up_);
        send([&] { result_->returnResults(); });
        result_.reset();
    }
    void answer(const sdbus::Error& error) {
        if (std::exchange(answered_, true)) return;
        context_.waiting_replies.erase(&give_up_);
        send([&] { result_->returnError(error); });
        result_.reset();
    }

private:
    // The last holder may drop it while shipd winds down, when the bus connection is already closed.
    template <typename Send>
    static void send(Send&& reply) noexcept {
        try {
            reply();
        } catch (const std::exception& e) {
            spdlog::debug("D-Bus: a late method reply was not sent: {}", e.what());
        }
    }

    // Reset once answered: the message inside must not outlive the bus connection (sdbus-c++ frees it
    // through the connection), and the last holder may drop this much later.
    std::optional<sdbus::Result<>> result_;
    BusContext& context_;
    std::function<void()> give_up_;
    bool answered_ = false;
};

// A command that changed what is persisted: answered once the change is on disk, so an acknowledged Trust
// survives a crash.
inline void answer_when_persisted(BusContext& context, sdbus::Result<>&& result,
                                  const ship::hub::Result& outcome) {
    if (outcome) return result.returnError(to_dbus_error(*outcome));
    auto reply = std::make_shared<DeferredReply>(std::move(result), context);
    context.hub.when_persisted([reply](const ship::hub::Result& written) { reply->answer(written); });
}

inline void answer_now(sdbus::Result<>&& result, const ship::hub::Result& outcome) {
    if (outcome) return result.returnError(to_dbus_error(*outcome));
    result.returnResults();
}

// Connect: answered with the dial's outcome, and a success only once the address it stored is on disk.
inline void answer_connect(BusContext& context, sdbus::Result<>&& result, std::string_view ski,
                           std::string_view host, std::uint16_t port) {
    auto reply = std::make_shared<DeferredReply>(std::move(result), context);
    auto* hub = &context.hub;
    const auto refused =
        context.hub.connect_and_report(ski, host, port, [reply, hub](const ship::hub::Result& r) {
            if (r) return reply->answer(r);
            hub->when_persisted([reply](const ship::hub::Result& written) { reply->answer(written); });
        });
    if (refused) reply->answer(refused);
}

} // namespace ship::daemon
