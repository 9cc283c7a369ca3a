// The hub's core pieces wired the way the Hub wires them on the strand, minus sockets and SHIP: transports
// are plain records the test drives. Ownership events are checked to alternate per SKI as they happen.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>

#include "fake_connection.hpp"
#include "hub/dial_scheduler.hpp"
#include "hub/passive_waits.hpp"
#include "hub/registry.hpp"
#include "ship/connection.hpp"

namespace ship::hub::test {

class MiniHub {
public:
    struct Transport {
        int id = 0;
        std::string ski;
        Direction direction = Direction::incoming;
        bool open = true;      // the transport has not reported its end yet
        bool upgraded = false; // WebSocket up (and, for outgoing, the dial produced it)
        bool cancelled = false;
        int unbuilt_closes = 0; // closes of a connection that never got built (lost, refused, stop)
        std::shared_ptr<FakeConnection> conn;
        std::optional<std::uint64_t> held;
        DialTicket ticket; // outgoing, until the upgrade
    };
    using TransportPtr = std::shared_ptr<Transport>;

    MiniHub(std::string local_ski, DoubleConnectionRule rule, TimerService& timers, RandomSource& random,
            std::stop_token stop)
        : stop_(stop)
        , registry(std::move(local_ski), rule, stop)
        , waits(timers, stop)
        , scheduler(timers, random, stop, hooks()) {}

    // A new transport, from the peer (incoming) or from our dial (outgoing, created by the dial hook).
    TransportPtr make_transport(const std::string& ski, Direction direction) {
        auto t = std::make_shared<Transport>();
        t->id = ++last_id;
        t->ski = ski;
        t->direction = direction;
        transports[t->id] = t;
        return t;
    }

    // TLS verify of an incoming connection: refuse a sure loser, cancel our own dial if this one wins.
    bool verify_incoming(const TransportPtr& t) {
        if (!registry.would_accept(t->ski, Direction::incoming)) {
            close_unbuilt(*t);
            return false;
        }
        if (registry.decide(t->ski, Direction::incoming) == Decision::keep_new) scheduler.cancel_dial(t->ski);
        return true;
    }

    void upgraded(const TransportPtr& t) {
        t->upgraded = true;
        if (t->direction == Direction::outgoing && !t->ticket.connected()) {
            close_unbuilt(*t);
            return;
        }
        try_register(t, false);
    }

    void data_exchange(const TransportPtr& t) {
        if (!t->conn || !t->conn->alive()) return;
        t->conn->data_exchange = true;
        if (registry.confirm_connected(t->ski, *t->conn)) {
            emit_connected(t->ski);
            scheduler.handshake_completed(t->ski);
        }
    }

    // The transport ended (peer close, error, or the end of our own close).
    void transport_closed(const TransportPtr& t) {
        if (!t->open) return;
        t->open = false;
        t->ticket.release();
        if (t->held) {
            waits.take(*std::exchange(t->held, std::nullopt));
            return;
        }
        if (!t->conn) return;
        t->conn->begin_close();
        const auto removal = registry.remove_if_matches(t->ski, *t->conn);
        if (removal.was_connected) emit_disconnected(t->ski);
        if (!removal.owned) return;
        for (auto& held : waits.take_ski(t->ski)) {
            held.item->held.reset();
            try_register(held.item, false);
        }
        if (trusted.contains(t->ski)) scheduler.request(t->ski);
    }

    void trust(const std::string& ski) {
        trusted.insert(ski);
        scheduler.request(ski);
    }

    void untrust(const std::string& ski) {
        trusted.erase(ski);
        scheduler.forget(ski);
        if (auto conn = registry.find(ski)) conn->close(ship::close_code_trust_removed, "trust removed");
    }

    void stop() {
        scheduler.shutdown();
        for (auto& released : registry.take_all()) {
            if (released.was_connected) emit_disconnected(released.connection->ski());
            released.connection->close(ship::close_code_ship, "shutting down");
        }
        for (auto& held : waits.take_all()) {
            held.item->held.reset();
            close_unbuilt(*held.item);
        }
    }

    bool dial_or_slot_pending(const std::string& ski) const {
        return registry.contains(ski) || scheduler.is_dialling(ski) || scheduler.has_timer(ski);
    }

    // What the test wires up: called when a connection's close starts, and when we start a dial.
    std::function<void(const TransportPtr&)> on_close_started;
    std::function<void(const TransportPtr&)> on_dial;

    std::stop_token stop_;
    Registry registry;
    PassiveWaits<TransportPtr> waits;
    std::set<std::string> trusted;
    std::map<std::string, bool> connected; // per SKI: between PeerConnected and PeerDisconnected
    int connected_events = 0, disconnected_events = 0, violations = 0;
    std::map<int, TransportPtr> transports;
    int last_id = 0;
    DialScheduler scheduler; // last: its hooks use the members above

private:
    DialScheduler::Hooks hooks() {
        return {
            [this](const std::string& ski) { return trusted.contains(ski) && !registry.is_connected(ski); },
            [](const std::string&) {
                return std::optional<PeerAddress>(PeerAddress{"192.0.2.7", 4711, "/ship/"});
            },
            [this](const std::string& ski, const PeerAddress&, DialTicket ticket) {
                auto t = make_transport(ski, Direction::outgoing);
                t->ticket = std::move(ticket);
                if (on_dial) on_dial(t);
                std::weak_ptr<Transport> weak = t;
                return std::function<void()>([weak] {
                    if (auto dial = weak.lock()) dial->cancelled = true;
                });
            },
        };
    }

    void try_register(const TransportPtr& t, bool passive_wait_over) {
        const auto r = registry.swap(
            t->ski, t->direction,
            [&] {
                t->conn = std::make_shared<FakeConnection>(t->ski, t->direction, t->id);
                std::weak_ptr<Transport> weak = t;
                t->conn->on_close = [this, weak] {
                    if (auto tp = weak.lock(); tp && on_close_started) on_close_started(tp);
                };
                return t->conn;
            },
            passive_wait_over);
        if (r.lost_connected) emit_disconnected(t->ski);
        if (r.evicted) close_as_double_connection(*r.evicted);
        switch (r.decision) {
        case Decision::keep_new:
            break;
        case Decision::keep_existing:
            close_unbuilt(*t);
            break;
        case Decision::defer:
            t->held = waits.hold(t->ski, t->direction, t, [this](PassiveWaits<TransportPtr>::Held held) {
                held.item->held.reset();
                try_register(held.item, true);
            });
            break;
        }
    }

    void close_unbuilt(Transport& t) {
        ++t.unbuilt_closes;
        t.ticket.release();
        t.open = false;
    }

    void emit_connected(const std::string& ski) {
        if (std::exchange(connected[ski], true)) ++violations;
        ++connected_events;
    }
    void emit_disconnected(const std::string& ski) {
        if (!std::exchange(connected[ski], false)) ++violations;
        ++disconnected_events;
    }
};

} // namespace ship::hub::test
