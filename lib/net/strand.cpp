#include "net/strand.hpp"

#include <csignal>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "net/detail.hpp"
#include "net/lws_log.hpp"

namespace ship::net {

namespace detail {

namespace {

// The strand's own vhost exists only to receive LWS_CALLBACK_EVENT_WAIT_CANCELLED (lws broadcasts it to
// the protocols of every vhost; with explicit vhosts there would otherwise be none).
const lws_protocols strand_protocols[] = {
    {"shipd-strand", &lws_event, 0, 0, 0, nullptr, 0},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

} // namespace

void StoppedWake::operator()() const noexcept {
    core->wake();
}

StrandCore::StrandCore(std::stop_token stop_token, StrandOptions strand_options)
    : stop(std::move(stop_token))
    , options(strand_options)
    , thread(std::this_thread::get_id()) {
    route_lws_log_to_spdlog();
    // lws writes to sockets peers may already have closed; with SIGPIPE at its default that kills the
    // process. A daemon that installed its own handler keeps it.
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL)
        std::signal(SIGPIPE, SIG_IGN);

    lws_context_creation_info info{};
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.user = this;
    context = lws_create_context(&info);
    if (!context) throw std::runtime_error("cannot create the libwebsockets context");

    lws_context_creation_info vinfo{};
    vinfo.port = CONTEXT_PORT_NO_LISTEN;
    vinfo.protocols = strand_protocols;
    vinfo.vhost_name = "shipd-strand";
    vinfo.options = LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
    strand_vhost = lws_create_vhost(context, &vinfo);
    if (!strand_vhost) {
        lws_context_destroy(context);
        throw std::runtime_error("cannot create the strand's libwebsockets vhost");
    }
    stop_callback.emplace(stop, StoppedWake{this});
}

StrandCore::~StrandCore() {
    stop_callback.reset(); // no wake from a stopping thread can start after this line
    silenced = true;
    {
        std::lock_guard lock(post_mutex);
        accepting_posts = false;
        posted.clear();
    }
    for (TimerCore* timer : timers) {
        lws_sul_cancel(&timer->node.sul);
        timer->pending = false;
        timer->strand = nullptr;
    }
    timers.clear();
    // Links and endpoints still alive (contract 5 says they should be gone) are silenced above.
    lws_context_destroy(context);
    context = nullptr;
    kept.clear();
}

void StrandCore::wake() {
    std::lock_guard lock(post_mutex);
    if (accepting_posts && context) lws_cancel_service(context);
}

void StrandCore::drain_posts() {
    std::deque<std::function<void()>> batch;
    {
        std::lock_guard lock(post_mutex);
        batch.swap(posted);
    }
    check_stop();
    for (auto& fn : batch) {
        if (stop.stop_requested() || silenced) break; // contract 2: discarded, not run
        fn();
    }
}

void StrandCore::check_stop() {
    if (stop_handled || !stop.stop_requested()) return;
    stop_handled = true;
    {
        std::lock_guard lock(post_mutex);
        posted.clear();
    }
    if (!stop_handler) {
        finished = true;
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
    // Called from inside a callback (timer, link event): without a wake lws would sleep on in poll().
    lws_cancel_service(context);
}

Link* StrandCore::find_link(lws* wsi) const {
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
    if (core_->stop.stop_requested()) return false;
    std::lock_guard lock(core_->post_mutex);
    if (!core_->accepting_posts) return false;
    core_->posted.push_back(std::move(fn));
    lws_cancel_service(core_->context);
    return true;
}

void Strand::run() {
    auto& core = *core_;
    assert(!core.ran);
    core.thread.store(std::this_thread::get_id(), std::memory_order_release);
    core.running = core.ran = true;
    core.check_stop();
    while (!core.finished) {
        if (lws_service(core.context, 0) < 0) {
            spdlog::error("strand: the libwebsockets service loop failed; leaving");
            break;
        }
        core.check_stop();
    }
    core.bound_timer.reset();
    core.silenced = true; // contract 5
    core.running = false;
    core.parked.store(true, std::memory_order_release);
}

bool Strand::is_on_strand() const noexcept {
    return core_->on_strand();
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
