// A SHIP connection on a real socket: a Link drives a sans-I/O ship::Connection. Actions become Link writes
// and closes, its next deadline one strand Timer, Link events SME inputs. One on_ended per session, last.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "net/link.hpp"
#include "net/timer.hpp"
#include "ship/connection.hpp"

namespace ship::net {

class Strand;
class ShipSession;

// Implemented by the owner; called on the strand. A session may be dropped from on_ended (its last call),
// not from the others.
class ShipSessionEvents {
public:
    virtual ~ShipSessionEvents() = default;
    virtual void on_state(ShipSession&, PeerState, const std::string& /*error*/) {}
    virtual void on_ship_id(ShipSession&, const std::string& /*ship_id*/) {}
    virtual void on_completed(ShipSession&) {}
    virtual void on_data(ShipSession&, const std::string& /*json*/) {}
    // The socket is gone. `ship_reason` is the SME's account (why SHIP ended it, or the transport's words),
    // `info` the WebSocket close as the Link saw it.
    virtual void on_ended(ShipSession&, const std::string& ship_reason, const CloseInfo& info) = 0;
};

// Strand only. Takes the Link over as its handler; the SME starts when the Link opens (at once if it is
// open already), in the Link's role. The SME's next deadline runs on one `shutdown` strand Timer: it may
// bound a polite close, which is exactly what runs during shutdown (a handshake deadline may fire then too).
class ShipSession final : public LinkHandler {
public:
    ShipSession(Strand& strand, std::shared_ptr<Link> link, ship::ConnectionConfig config,
                ShipSessionEvents& events);
    ~ShipSession() override; // cuts the Link if it is still up (no callbacks)
    ShipSession(const ShipSession&) = delete;
    ShipSession& operator=(const ShipSession&) = delete;

    void approve();
    void deny();
    std::optional<std::string> send_data(std::string_view plain_json);
    void close(std::string_view reason); // SHIP's polite close (connectionClose announce, or 4001)
    void remove_trust();

    const ship::Connection& sme() const { return sme_; }
    Link& link() { return *link_; }
    bool ended() const { return ended_; }

    void on_open(Link& link) override;
    void on_message(Link& link, std::vector<std::uint8_t> message) override;
    void on_closed(Link& link, const CloseInfo& info) override;

private:
    void apply();
    void arm_deadline();

    Strand& strand_;
    std::shared_ptr<Link> link_;
    ship::Connection sme_;
    ShipSessionEvents& events_;
    Timer deadline_timer_;
    std::optional<ship::TimePoint> armed_for_; // the deadline deadline_timer_ runs to, if it runs
    std::string ship_reason_;
    bool started_ = false, ended_ = false;
};

} // namespace ship::net
