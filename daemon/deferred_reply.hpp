// Method replies that may have to wait (for the disk, for a dial's outcome): answered exactly once, and
// ShuttingDown if whoever holds one drops it unanswered. Loop thread only.
#pragma once

#include <exception>
#include <memory>
#include <utility>

#include <sdbus-c++/sdbus-c++.h>
#include <spdlog/spdlog.h>

#include "bus_context.hpp"
#include "dbus_errors.hpp"

namespace ship::daemon {

class DeferredReply {
public:
    explicit DeferredReply(sdbus::Result<>&& result)
        : result_(std::move(result)) {}
    DeferredReply(const DeferredReply&) = delete;
    DeferredReply& operator=(const DeferredReply&) = delete;
    ~DeferredReply() { answer(shutting_down_error()); }

    void answer(const ship::hub::Result& outcome) {
        if (outcome) return answer(to_dbus_error(*outcome));
        if (std::exchange(answered_, true)) return;
        send([&] { result_.returnResults(); });
    }
    void answer(const sdbus::Error& error) {
        if (std::exchange(answered_, true)) return;
        send([&] { result_.returnError(error); });
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

    sdbus::Result<> result_;
    bool answered_ = false;
};

// A command that changed what is persisted: answered once the change is on disk, so an acknowledged Trust
// survives a crash.
inline void answer_when_persisted(BusContext& context, sdbus::Result<>&& result,
                                  const ship::hub::Result& outcome) {
    if (outcome) return result.returnError(to_dbus_error(*outcome));
    auto reply = std::make_shared<DeferredReply>(std::move(result));
    context.hub.when_persisted([reply](const ship::hub::Result& written) { reply->answer(written); });
}

inline void answer_now(sdbus::Result<>&& result, const ship::hub::Result& outcome) {
    if (outcome) return result.returnError(to_dbus_error(*outcome));
    result.returnResults();
}

// Connect: answered with the dial's outcome, and a success only once the address it stored is on disk.
inline void answer_connect(BusContext& context, sdbus::Result<>&& result, std::string_view ski,
                           std::string_view host, std::uint16_t port) {
    auto reply = std::make_shared<DeferredReply>(std::move(result));
    auto* hub = &context.hub;
    const auto refused =
        context.hub.connect_and_report(ski, host, port, [reply, hub](const ship::hub::Result& r) {
            if (r) return reply->answer(r);
            hub->when_persisted([reply](const ship::hub::Result& written) { reply->answer(written); });
        });
    if (refused) reply->answer(refused);
}

} // namespace ship::daemon
