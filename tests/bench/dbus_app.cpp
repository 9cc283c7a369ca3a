// shipbench-dbus: the D-Bus app's half of the data-path benchmark. `listen` counts DataReceived signals and
// measures peer → shipd → app latency; `send` calls SendData in a loop (app → shipd → peer).
// Latency uses the send time shipbench (or this program) puts in the SPINE header's msgCounter:
// steady_clock nanoseconds, which is CLOCK_MONOTONIC and so comparable between processes on one machine.
#include <getopt.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <sdbus-c++/sdbus-c++.h>

namespace {

using Clock = std::chrono::steady_clock;
constexpr const char* service = "org.shipd.Hub1";
constexpr const char* hub_path = "/org/shipd/Hub1";
constexpr const char* hub_interface = "org.shipd.Hub1";

struct Options {
    std::string mode;
    std::string bus_address;
    std::size_t count = 0; // listen: signals to wait for; send: calls to make
    std::size_t window = 64;
    std::size_t peers = 1;
    std::chrono::seconds deadline{60};
    bool json = false;
};

[[noreturn]] void usage(int code) {
    (code == 0 ? std::cout : std::cerr)
        << "usage: shipbench-dbus listen --bus-address A --count N [--deadline S] [--json]\n"
           "       shipbench-dbus send --bus-address A --count N [--window W] [--peers K] [--deadline S] "
           "[--json]\n"
           "  listen  count DataReceived signals until N arrived; prints \"listening\" on stderr once "
           "subscribed\n"
           "  send    wait until K peers are connected (ListPeers), then call SendData N times round-robin,\n"
           "          at most W calls awaiting their reply\n";
    std::exit(code);
}

unsigned long number(const char* flag, const char* text, unsigned long max) {
    char* end = nullptr;
    errno = 0;
    const unsigned long value = std::strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value == 0 || value > max) {
        std::cerr << "shipbench-dbus: " << flag << " wants a number from 1 to " << max << ", not '" << text
                  << "'\n";
        std::exit(2);
    }
    return value;
}

Options parse(int argc, char** argv) {
    if (argc < 2) usage(2);
    Options o;
    o.mode = argv[1];
    if (o.mode == "--help") usage(0);
    if (o.mode != "listen" && o.mode != "send") usage(2);
    enum { o_bus = 1, o_count, o_window, o_peers, o_deadline, o_json };
    static const option longs[] = {{"bus-address", required_argument, nullptr, o_bus},
                                   {"count", required_argument, nullptr, o_count},
                                   {"window", required_argument, nullptr, o_window},
                                   {"peers", required_argument, nullptr, o_peers},
                                   {"deadline", required_argument, nullptr, o_deadline},
                                   {"json", no_argument, nullptr, o_json},
                                   {nullptr, 0, nullptr, 0}};
    optind = 2;
    int c = 0;
    while ((c = getopt_long(argc, argv, "", longs, nullptr)) != -1) {
        switch (c) {
        case o_bus:
            o.bus_address = optarg;
            break;
        case o_count:
            o.count = number("--count", optarg, 100'000'000);
            break;
        case o_window:
            o.window = number("--window", optarg, 100'000);
            break;
        case o_peers:
            o.peers = number("--peers", optarg, 100'000);
            break;
        case o_deadline:
            o.deadline = std::chrono::seconds(number("--deadline", optarg, 86'400));
            break;
        case o_json:
            o.json = true;
            break;
        default:
            usage(2);
        }
    }
    if (optind != argc || o.bus_address.empty() || o.count == 0) usage(2);
    return o;
}

std::uint64_t now_ns() {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

// The send time in a SPINE datagram's header.msgCounter, or 0 when there is none.
std::uint64_t stamp_of(const std::string& json) {
    rapidjson::Document doc;
    doc.Parse(json.c_str(), json.size());
    if (doc.HasParseError() || !doc.IsObject()) return 0;
    auto d = doc.FindMember("datagram");
    if (d == doc.MemberEnd() || !d->value.IsObject()) return 0;
    auto h = d->value.FindMember("header");
    if (h == d->value.MemberEnd() || !h->value.IsObject()) return 0;
    auto m = h->value.FindMember("msgCounter");
    return m != h->value.MemberEnd() && m->value.IsUint64() ? m->value.GetUint64() : 0;
}

std::string datagram(std::uint64_t stamp) {
    return R"({"datagram":{"header":{"specificationVersion":"1.3.0","addressSource":{"device":"d:_i:shipbench-dbus",)"
           R"("entity":[0],"feature":0},"addressDestination":{"entity":[0],"feature":0},"msgCounter":)" +
           std::to_string(stamp) +
           R"(,"cmdClassifier":"read"},"payload":{"cmd":[{"nodeManagementDetailedDiscoveryData":{}}]}}})";
}

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

// Serves the bus connection on this thread until `done` or the deadline; false on the deadline. `done` is
// asked again at least every `recheck` even when the bus is quiet (for conditions that are polled).
template <typename Done>
bool serve(sdbus::IConnection& bus, Clock::time_point until, Done done,
           std::chrono::milliseconds recheck = std::chrono::hours(24)) {
    for (;;) {
        while (bus.processPendingRequest()) {
        }
        if (done()) return true;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
        if (left <= 0) return false;
        const auto data = bus.getEventLoopPollData();
        int wait_ms = static_cast<int>(std::min<long long>(left, recheck.count()));
        const int bus_ms = data.getPollTimeout();
        if (bus_ms >= 0 && bus_ms < wait_ms) wait_ms = bus_ms;
        pollfd fd{data.fd, data.events, 0};
        poll(&fd, 1, wait_ms);
    }
}

struct Figures {
    std::size_t done = 0, failed = 0;
    std::vector<double> latency_ms;
    Clock::time_point first{}, last{};
    std::map<std::string, std::size_t> errors;
};

void report(const Options& o, const char* what, Figures& f) {
    std::sort(f.latency_ms.begin(), f.latency_ms.end());
    const double wall = f.done > 1 ? std::chrono::duration<double>(f.last - f.first).count() : 0;
    const double rate = wall > 0 ? static_cast<double>(f.done - 1) / wall : 0;
    const double p50 = percentile(f.latency_ms, 50), p90 = percentile(f.latency_ms, 90),
                 p99 = percentile(f.latency_ms, 99), max = f.latency_ms.empty() ? 0 : f.latency_ms.back();
    if (o.json) {
        std::printf("{\"mode\": \"%s\", \"count\": %zu, \"done\": %zu, \"failed\": %zu, \"per_s\": %.1f, "
                    "\"latency_ms\": {\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
                    "\"errors\": %zu}\n",
                    o.mode.c_str(), o.count, f.done, f.failed, rate, p50, p90, p99, max, f.errors.size());
        // The error texts go to stderr: they are free text, not JSON-escaped here.
        std::size_t shown = 0;
        for (const auto& [error, n] : f.errors)
            if (shown++ < 5) std::fprintf(stderr, "%zu × %s\n", n, error.c_str());
        return;
    }
    std::printf("shipbench-dbus %s: %zu of %zu %s, %zu failed\n", o.mode.c_str(), f.done, o.count, what,
                f.failed);
    std::printf("  %-28s %.1f /s\n", "rate (first → last)", rate);
    std::printf("  %-28s p50 %.3f  p90 %.3f  p99 %.3f  max %.3f ms\n", "latency", p50, p90, p99, max);
    for (const auto& [error, n] : f.errors)
        std::printf("    %6zu  %s\n", n, error.c_str());
}

int listen(const Options& o) {
    auto bus = sdbus::createSessionBusConnectionWithAddress(o.bus_address);
    auto hub = sdbus::createProxy(*bus, service, hub_path);
    Figures f;
    f.latency_ms.reserve(o.count);
    hub->uponSignal("DataReceived")
        .onInterface(hub_interface)
        .call([&](const std::string&, const std::string& json) {
            const auto now = now_ns();
            if (f.done == 0) f.first = Clock::now();
            f.last = Clock::now();
            ++f.done;
            if (const auto stamp = stamp_of(json); stamp != 0 && stamp <= now)
                f.latency_ms.push_back(static_cast<double>(now - stamp) / 1e6);
        });
    hub->finishRegistration();
    // The match rule is installed once the bus has answered AddMatch: a round trip makes sure of that.
    hub->callMethod("Get")
        .onInterface("org.freedesktop.DBus.Properties")
        .withArguments(hub_interface, "Version");
    std::cerr << "listening" << std::endl;
    const bool complete = serve(*bus, Clock::now() + o.deadline, [&] { return f.done >= o.count; });
    report(o, "DataReceived signals", f);
    return complete ? 0 : 1;
}

int send(const Options& o) {
    auto bus = sdbus::createSessionBusConnectionWithAddress(o.bus_address);
    auto hub = sdbus::createProxy(*bus, service, hub_path);
    hub->finishRegistration();
    const auto until = Clock::now() + o.deadline;

    std::vector<std::string> peers;
    const bool found = serve(
        *bus, until,
        [&] {
            std::vector<sdbus::Struct<std::string, std::string, std::string, bool, bool>> list;
            hub->callMethod("ListPeers").onInterface(hub_interface).storeResultsTo(list);
            peers.clear();
            for (const auto& p : list)
                if (p.get<4>()) peers.push_back(p.get<0>()); // (ski, ship_id, state, trusted, connected)
            return peers.size() >= o.peers;
        },
        std::chrono::milliseconds(20));
    if (!found) {
        std::cerr << "shipbench-dbus: only " << peers.size() << " of " << o.peers << " peers connected\n";
        return 1;
    }

    Figures f;
    f.latency_ms.reserve(o.count);
    std::size_t issued = 0, in_flight = 0;
    auto issue = [&] {
        while (issued < o.count && in_flight < o.window) {
            const auto& ski = peers[issued % peers.size()];
            const auto sent = Clock::now();
            if (issued == 0) f.first = sent;
            ++issued;
            ++in_flight;
            hub->callMethodAsync("SendData")
                .onInterface(hub_interface)
                .withArguments(ski, datagram(now_ns()))
                .uponReplyInvoke([&, sent](const sdbus::Error* error) {
                    --in_flight;
                    f.last = Clock::now();
                    if (error) {
                        ++f.failed;
                        ++f.errors[error->getName() + ": " + error->getMessage()];
                        return;
                    }
                    ++f.done;
                    f.latency_ms.push_back(std::chrono::duration<double, std::milli>(f.last - sent).count());
                });
        }
    };
    const bool complete = serve(*bus, until, [&] {
        issue();
        return f.done + f.failed >= o.count;
    });
    report(o, "SendData calls answered", f);
    return complete && f.failed == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    try {
        return o.mode == "listen" ? listen(o) : send(o);
    } catch (const sdbus::Error& e) {
        std::cerr << "shipbench-dbus: " << e.getName() << ": " << e.getMessage() << '\n';
        return 1;
    }
}
