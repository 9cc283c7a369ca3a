#include "net/strand.hpp"

#include <csignal>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "net/detail.hpp"
#include "net/lws_log.hpp"

namespace ship::net {

namespace detail {

namespace {

// libwebsockets 4.1.6 runs all its timeouts (TLS accept, close handshake, killing a wsi asynchronously) on
// one ev_timer, and its libev glue re-arms that timer only when it is not already running: a timeout added
// earlier than the armed expiry waits for that expiry (its 30 s header lifecheck, for one). A self-renewing
// lws timer of our own keeps the armed expiry at most this far ahead, which bounds that lateness. It costs
// one wake-up per period for the whole process, not per connection.
constexpr lws_usec_t lws_heartbeat = 100 * LWS_US_PER_MS;

void heartbeat(lws_sorted_usec_list_t* sul) {
    // sul is the first member of the standard-layout Heartbeat.
    auto* core = reinterpret_cast<StrandCore::Heartbeat*>(sul)->core;
    if (core->context) lws_sul_schedule(core->context, 0, sul, &heartbeat, lws_heartbeat);
}

} // namespace

void StoppedWake::operator()() const noexcept {
    // Any thread (the one that requested the stop). A no-op closure is enough: every loop turn ends with the
    // turn hook, which sees the stop.
    core->loop.post([] {});
}

StrandCore::StrandCore(std::stop_token stop_token, StrandOptions strand_options)
    : stop(std::move(stop_token))
    , options(strand_options) {
    route_lws_log_to_spdlog();
    // lws writes to sockets peers may already have closed; with SIGPIPE at its default that kills the
    // process. A daemon that installed its own handler keeps it.
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL)
        std::signal(SIGPIPE, SIG_IGN);

    lws_context_creation_info info{};
    info.port = CONTEXT_PORT_NO_LISTEN;
    // libwebsockets runs on our loop (libev, epoll): its sockets are ev_io watchers next to the D-Bus and
    // Avahi fds, its timers one ev_timer. Its own poll() loop would cost O(connections) per wake-up.
    info.options =
        LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_LIBEV;
    void* foreign_loops[] = {loop.native()};
    info.foreign_loops = foreign_loops;
    info.pcontext = &context; // lws sets it to null once the context is wholly gone
    info.user = this;
    context = lws_create_context(&info);
    if (!context)
        throw std::runtime_error(
            "cannot create the libwebsockets context (is libwebsockets-evlib-ev installed?)");
    keep_alive = std::make_unique<KeepAlive>(*this);
    heartbeat.core = this;
    lws_sul_schedule(context, 0, &heartbeat.sul, &detail::heartbeat, lws_heartbeat);
    turn_hook.emplace(loop, [this] { check_stop(); });
    stop_callback.emplace(stop, StoppedWake{this});
}

StrandCore::~StrandCore() {
    stop_callback.reset(); // no wake from a stopping thread can start after this line
    silenced = true;
    turn_hook.reset();
    keep_alive.reset();
    for (TimerCore* timer : timers) {
        timer->timer.reset();
        timer->strand = nullptr;
    }
    timers.clear();
    // Links and endpoints still alive (contract 5 says they should be gone) are silenced above.
    bound_timer.reset();
    lws_sul_cancel(&heartbeat.sul);
    // With libev nothing closes asynchronously: this frees the context and sets `context` to null
    // (info.pcontext).
    if (context) lws_context_destroy(context);
    if (context) spdlog::warn("strand: libwebsockets did not finish closing");
    kept.clear();
}

void StrandCore::check_stop() {
    if (stop_handled || !stop.stop_requested()) return;
    stop_handled = true;
    if (!stop_handler) {
        finish();
        return;
    }
    spdlog::debug("strand: stop requested; closing down (bound {} ms)", options.shutdown_bound.count());
    bound_timer = std::make_unique<Timer>(*this, Timer::Kind::shutdown);
    bound_timer->start(options.shutdown_bound, [this] {
        spdlog::info("strand: shutdown bound of {} ms reached; leaving with connections still open",
                     options.shutdown_bound.count());
        finish();
    });
    auto handler = std::move(stop_handler);
    handler();
}

void StrandCore::finish() {
    finished = true;
    if (running) loop.stop();
}

LwsLink* StrandCore::find_link(lws* wsi) const {
    if (!wsi) return nullptr;
    const auto id = reinterpret_cast<std::uintptr_t>(lws_get_opaque_user_data(wsi));
    if (!id) return nullptr;
    auto it = links.find(id);
    if (it == links.end()) return nullptr;
    return it->second;
}

Endpoint* StrandCore::find_endpoint(lws_vhost* vhost) const {
    if (!vhost) return nullptr;
    const auto id = reinterpret_cast<std::uintptr_t>(lws_get_vhost_user(vhost));
    auto it = endpoints.find(id);
    return it == endpoints.end() ? nullptr : it->second;
}

} // namespace detail

Strand::Strand(std::stop_token stop, StrandOptions options)
    : core_(std::make_unique<detail::StrandCore>(std::move(stop), options)) {}

Strand::~Strand() {
    assert(!core_->running);
}

bool Strand::post(std::function<void()> fn) {
    auto& core = *core_;
    const bool stopping = core.stop.stop_requested();
    // Queued even when stopping, so that a discarded closure dies on the strand, not on the caller's thread:
    // what it holds (a D-Bus reply waiting for the disk) may only be touched there.
    const bool queued = core.loop.post([&core, fn = std::move(fn)] {
        if (core.stop.stop_requested() || core.silenced) return; // contract 2: discarded, not run
        fn();
    });
    return queued && !stopping;
}

void Strand::run() {
    auto& core = *core_;
    assert(!core.ran);
    core.loop.adopt_thread(); // before anything below starts a timer: it asserts the strand's thread
    core.running = core.ran = true;
    core.check_stop();
    if (!core.finished) core.loop.run();
    core.bound_timer.reset();
    core.silenced = true; // contract 5
    core.running = false;
    core.parked.store(true, std::memory_order_release);
}

bool Strand::is_on_strand() const noexcept {
    return core_->on_strand();
}

EventLoop& Strand::loop() const {
    return core_->loop;
}

void Strand::on_stop(std::function<void()> handler) {
    SHIP_NET_ASSERT_ON_STRAND(*core_);
    core_->stop_handler = std::move(handler);
}

void Strand::finish() {
    SHIP_NET_ASSERT_ON_STRAND(*core_);
    core_->finish();
}

bool Strand::stopping() const {
    return core_->stop.stop_requested();
}

const std::stop_token& Strand::stop_token() const {
    return core_->stop;
}

} // namespace ship::net
