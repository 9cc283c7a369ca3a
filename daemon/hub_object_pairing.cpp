// org.shipd.Hub1's pairing members (issue 15): agents, blocking by SKI, PairingTimeout, and the SHIP Pairing
// Service's window and request. Kept apart from hub_object.cpp; same rules: on the loop, answered at once
// or (when persisted state changed) once it is on disk, ShuttingDown after stop.
#include <memory>
#include <utility>

#include <spdlog/spdlog.h>

#include "agent.hpp"
#include "dbus_errors.hpp"
#include "hub/pairing_api.hpp"
#include "hub_object.hpp"
#include "ship_pairing.hpp"

namespace ship::daemon {

namespace {

sdbus::Error unavailable(const char* what) {
    return to_dbus_error(ship::hub::Error{ship::hub::ErrorCode::invalid_argument,
                                          std::string(what) + " is not available in this shipd"});
}

void reply(sdbus::Result<>&& result, const ship::hub::Result& outcome) {
    if (outcome) return result.returnError(to_dbus_error(*outcome));
    result.returnResults();
}

// Answered once the change is on disk (a block must survive a crash once acknowledged); ShuttingDown if the
// hub drops the callback unrun.
void reply_when_persisted(BusContext& context, sdbus::Result<>&& result, const ship::hub::Result& outcome) {
    if (outcome) return result.returnError(to_dbus_error(*outcome));
    struct Holder {
        explicit Holder(sdbus::Result<>&& r)
            : result(std::move(r)) {}
        Holder(const Holder&) = delete;
        Holder& operator=(const Holder&) = delete;
        sdbus::Result<> result;
        bool answered = false;
        ~Holder() {
            if (!answered) send([&] { result.returnError(shutting_down_error()); });
        }
        static void send(const std::function<void()>& f) {
            try {
                f();
            } catch (const std::exception& e) {
                spdlog::debug("D-Bus: a late method reply was not sent: {}", e.what());
            }
        }
    };
    auto holder = std::make_shared<Holder>(std::move(result));
    context.hub.when_persisted([holder](const ship::hub::Result& written) {
        holder->answered = true;
        Holder::send([&] {
            if (written)
                holder->result.returnError(to_dbus_error(*written));
            else
                holder->result.returnResults();
        });
    });
}

} // namespace

void HubObject::add_pairing(Announced& now) const {
    if (context_.pairing)
        now.pairing_timeout = static_cast<std::uint32_t>(context_.pairing->pairing_timeout().count());
    if (context_.pairing_service) {
        now.pairing_window = context_.pairing_service->window_deadline_us();
        now.pairing_result_time = context_.pairing_service->last_result().time_us;
    }
}

void HubObject::RegisterAgent(sdbus::Result<>&& result, sdbus::ObjectPath path) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    if (!context_.agents) return result.returnError(unavailable("RegisterAgent"));
    const auto* message = getObject().getCurrentlyProcessedMessage();
    const std::string sender = message ? message->getSender() : std::string();
    reply(std::move(result), context_.agents->register_agent(sender, path));
}

void HubObject::UnregisterAgent(sdbus::Result<>&& result, sdbus::ObjectPath path) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    if (!context_.agents) return result.returnError(unavailable("UnregisterAgent"));
    const auto* message = getObject().getCurrentlyProcessedMessage();
    const std::string sender = message ? message->getSender() : std::string();
    reply(std::move(result), context_.agents->unregister_agent(sender, path));
}

void HubObject::Block(sdbus::Result<>&& result, std::string ski) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    if (!context_.pairing) return result.returnError(unavailable("Block"));
    reply_when_persisted(context_, std::move(result), context_.pairing->set_blocked(ski, true));
}

void HubObject::Unblock(sdbus::Result<>&& result, std::string ski) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    if (!context_.pairing) return result.returnError(unavailable("Unblock"));
    reply_when_persisted(context_, std::move(result), context_.pairing->set_blocked(ski, false));
}

void HubObject::OpenPairingWindow(sdbus::Result<>&& result, std::uint32_t seconds) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    if (!context_.pairing_service) return result.returnError(unavailable("the SHIP Pairing Service"));
    reply(std::move(result), context_.pairing_service->open_window(std::chrono::seconds(seconds)));
}

void HubObject::ClosePairingWindow(sdbus::Result<>&& result) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    if (!context_.pairing_service) return result.returnError(unavailable("the SHIP Pairing Service"));
    reply(std::move(result), context_.pairing_service->close_window());
}

void HubObject::RequestPairing(sdbus::Result<>&& result, std::string qr) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    if (!context_.pairing_service) return result.returnError(unavailable("the SHIP Pairing Service"));
    reply_when_persisted(context_, std::move(result), context_.pairing_service->request_pairing(qr));
}

void HubObject::StopPairingRequest(sdbus::Result<>&& result) {
    if (context_.stopping()) return result.returnError(shutting_down_error());
    if (!context_.pairing_service) return result.returnError(unavailable("the SHIP Pairing Service"));
    reply(std::move(result), context_.pairing_service->stop_request());
}

std::uint32_t HubObject::PairingTimeout() {
    return context_.pairing ? static_cast<std::uint32_t>(context_.pairing->pairing_timeout().count()) : 0;
}

void HubObject::PairingTimeout(const std::uint32_t& value) {
    if (context_.stopping()) throw shutting_down_error();
    if (!context_.pairing) throw unavailable("PairingTimeout");
    if (auto e = context_.pairing->set_pairing_timeout(std::chrono::seconds(value))) throw to_dbus_error(*e);
    spdlog::info("D-Bus: PairingTimeout set to {} s", value);
    announce_property_changes();
}

std::uint64_t HubObject::PairingWindow() {
    return context_.pairing_service ? context_.pairing_service->window_deadline_us() : 0;
}

sdbus::Struct<std::string, std::string, std::string, std::uint64_t> HubObject::PairingServiceResult() {
    if (!context_.pairing_service) return {};
    const auto& r = context_.pairing_service->last_result();
    return {r.instance, r.trust_id, r.result, r.time_us};
}

} // namespace ship::daemon
