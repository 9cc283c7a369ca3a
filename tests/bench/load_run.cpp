#include "load_run.hpp"

#include <algorithm>

#include <rapidjson/document.h>

#include "hub/peer_connection.hpp"

namespace ship::bench {

namespace {

std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

// A small SPINE read, as an energy manager sends many of. msgCounter (unique per sender, as SPINE wants) is
// the send time, so the receiving process can tell the latency.
std::string datagram(std::uint64_t counter) {
    return R"({"datagram":{"header":{"specificationVersion":"1.3.0","addressSource":{"device":"d:_i:shipbench",)"
           R"("entity":[0],"feature":0},"addressDestination":{"entity":[0],"feature":0},"msgCounter":)" +
           std::to_string(counter) +
           R"(,"cmdClassifier":"read"},"payload":{"cmd":[{"nodeManagementDetailedDiscoveryData":{}}]}}})";
}

// The dial needs a handler until the PeerConnection takes the Link over, which happens before any event.
struct NoHandler final : net::LinkHandler {
    void on_open(net::Link&) override {}
    void on_message(net::Link&, std::vector<std::uint8_t>) override {}
    void on_closed(net::Link&, const net::CloseInfo&) override {}
};
NoHandler no_handler;

} // namespace

// One load connection, driven by the daemon's own PeerConnection (the same SME driver as shipd's).
struct LoadRun::Slot final : hub::PeerConnectionOwner {
    enum class Phase { handshake, sending, held, closing, finished };

    Slot(LoadRun& owner, std::size_t position)
        : run(owner)
        , index(position)
        , flush_poll(owner.strand_) {}

    void on_state(hub::PeerConnection&, PeerState, const std::string&) override {}
    void on_ship_id(hub::PeerConnection&, const std::string&) override {}

    void on_completed(hub::PeerConnection&) override {
        const auto now = Clock::now();
        run.result_.completed++;
        run.result_.handshake_ms.push_back(std::chrono::duration<double, std::milli>(now - started).count());
        run.result_.last_completed = std::max(run.result_.last_completed, now);
        if (run.plan_.on_completed) run.plan_.on_completed(run.result_.completed);
        run.settled(*this);
        phase = Phase::sending;
        if (run.plan_.messages > 0) {
            if (run.result_.first_send == Clock::time_point{}) run.result_.first_send = now;
            if (run.plan_.interval.count() > 0) {
                send_paced();
                return;
            }
            for (std::size_t i = 0; i < run.plan_.messages; ++i)
                if (!send_one()) return;
        }
        wait_flushed();
    }

    bool send_one() {
        if (auto error = session->send_data(datagram(now_ns()))) {
            fail("send_data: " + error->message);
            return false;
        }
        run.result_.messages_sent++;
        ++sent;
        return true;
    }

    // One message per interval, so each one's latency is the path's, not the queue's behind a burst.
    void send_paced() {
        if (phase != Phase::sending) return;
        if (sent >= run.plan_.messages) {
            wait_flushed();
            return;
        }
        if (!send_one()) return;
        flush_poll.start(run.plan_.interval, [this] { send_paced(); });
    }

    // Data counts as delivered once the Link has handed every message to the socket.
    void wait_flushed() {
        if (phase != Phase::sending) return;
        if (session->link().queued_messages() > 0) {
            flush_poll.start(std::chrono::milliseconds(1), [this] { wait_flushed(); });
            return;
        }
        if (run.plan_.messages > 0)
            run.result_.last_flushed = std::max(run.result_.last_flushed, Clock::now());
        if (run.plan_.hold) {
            phase = Phase::held;
            run.finished(*this);
        } else {
            phase = Phase::closing;
            session->close(ship::close_code_ship, "shipbench done");
        }
    }

    void on_data(hub::PeerConnection&, const std::string& json) override { run.received(json); }

    void on_ended(hub::PeerConnection& connection, const net::CloseInfo& info) override {
        flush_poll.cancel();
        ended = true;
        switch (phase) {
        case Phase::handshake:
        case Phase::sending: {
            std::string reason = connection.end_description(info.reason);
            if (reason.empty()) reason = "closed by " + std::string(net::to_string(info.by));
            fail(reason);
            break;
        }
        case Phase::closing:
            phase = Phase::finished;
            run.finished(*this);
            break;
        case Phase::held:
        case Phase::finished:
            break; // after the run (e.g. the daemon stopping): not a failure
        }
    }

    void fail(const std::string& reason) {
        const bool was_handshake = phase == Phase::handshake;
        phase = Phase::finished;
        run.result_.failures[reason]++;
        if (was_handshake) run.settled(*this);
        run.finished(*this);
    }

    LoadRun& run;
    std::size_t index;
    Phase phase = Phase::handshake;
    std::size_t sent = 0;
    Clock::time_point started{};
    std::unique_ptr<net::Client> client; // outlives its Link
    std::unique_ptr<hub::PeerConnection> session;
    bool ended = false; // the socket is gone
    net::Timer flush_poll;
};

LoadRun::LoadRun(net::Strand& strand, LoadPlan plan, std::vector<tls::Identity> identities,
                 std::function<void()> done)
    : strand_(strand)
    , ship_timers_(strand, net::Timer::Kind::shutdown)
    , plan_(std::move(plan))
    , identities_(std::move(identities))
    , done_(std::move(done))
    , deadline_(strand) {}

LoadRun::~LoadRun() = default;

void LoadRun::start() {
    deadline_.start(plan_.deadline, [this] {
        for (auto& slot : slots_) {
            if (slot->phase == Slot::Phase::handshake || slot->phase == Slot::Phase::sending ||
                slot->phase == Slot::Phase::closing)
                slot->fail("shipbench deadline passed");
        }
        while (next_ < identities_.size()) {
            result_.failures["not started before the deadline"]++;
            ++next_;
            ++finished_;
        }
        if (result_.messages_received < plan_.expect_received) {
            result_.failures["data messages not received before the deadline"] +=
                plan_.expect_received - result_.messages_received;
            plan_.expect_received = 0;
        }
        check_done();
    });
    const auto first = std::min(plan_.concurrency, identities_.size());
    for (std::size_t i = 0; i < first; ++i)
        launch_next();
    check_done();
}

void LoadRun::launch_next() {
    if (next_ >= identities_.size()) return;
    auto& slot = *slots_.emplace_back(std::make_unique<Slot>(*this, next_));
    const auto& identity = identities_[next_++];
    ++in_handshake_;
    // The Client (an lws vhost with this certificate) is built before the clock starts: it is the
    // certificate's setup, not the handshake.
    net::ClientConfig config;
    config.certificate_pem = identity.certificate_pem;
    config.private_key_pem = identity.private_key_pem;
    slot.client = std::make_unique<net::Client>(strand_, std::move(config));
    slot.started = Clock::now();
    if (result_.first_dial == Clock::time_point{}) result_.first_dial = slot.started;
    auto link = slot.client->dial({plan_.host, plan_.port, "/ship/", plan_.ski}, no_handler);
    if (!link) {
        slot.fail("dial refused (stopping)");
        return;
    }
    ship::ConnectionConfig ship_config;
    ship_config.own_ship_id = "shipbench-" + std::to_string(slot.index);
    ship_config.peer_trusted = true;
    slot.session = std::make_unique<hub::PeerConnection>(ship_timers_, slot, std::move(link),
                                                         hub::Direction::outgoing, std::move(ship_config));
}

void LoadRun::settled(Slot&) {
    --in_handshake_;
    // Never launch from inside a session callback's stack frame of another session: post it.
    strand_.post([this] { launch_next(); });
}

void LoadRun::finished(Slot&) {
    ++finished_;
    check_done();
}

void LoadRun::received(const std::string& json) {
    const auto now = Clock::now();
    const auto arrived_ns = now_ns();
    if (result_.messages_received++ == 0) result_.first_received = now;
    result_.last_received = now;
    rapidjson::Document doc;
    doc.Parse(json.c_str(), json.size());
    if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("datagram") && doc["datagram"].IsObject()) {
        const auto& datagram = doc["datagram"];
        if (datagram.HasMember("header") && datagram["header"].IsObject()) {
            const auto& header = datagram["header"];
            if (header.HasMember("msgCounter") && header["msgCounter"].IsUint64()) {
                const auto stamp = header["msgCounter"].GetUint64();
                if (stamp <= arrived_ns)
                    result_.receive_ms.push_back(static_cast<double>(arrived_ns - stamp) / 1e6);
            }
        }
    }
    check_done();
}

void LoadRun::check_done() {
    if (done_called_ || finished_ < identities_.size()) return;
    if (plan_.hold && result_.messages_received < plan_.expect_received && result_.completed > 0) return;
    done_called_ = true;
    deadline_.cancel();
    done_();
}

std::size_t LoadRun::open_sessions() const {
    return static_cast<std::size_t>(std::count_if(
        slots_.begin(), slots_.end(), [](const auto& slot) { return slot->session && !slot->ended; }));
}

} // namespace ship::bench
