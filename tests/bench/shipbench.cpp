// shipbench: a SHIP load generator. Opens N client connections to a running shipd (each with its own fresh
// certificate), drives them to data exchange, optionally sends data, and reports latency and throughput;
// with --pid also the daemon's memory and CPU, with --hold/--sigterm its idle cost and shutdown time.
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <rapidjson/ostreamwrapper.h>
#include <rapidjson/prettywriter.h>
#include <spdlog/spdlog.h>

#include "load_run.hpp"
#include "target_process.hpp"

using namespace ship;
using namespace std::chrono_literals;

namespace {

struct Options {
    bench::LoadPlan plan;
    std::size_t connections = 1;
    pid_t pid = 0;
    bool json = false;
    bool sigterm = false;
    std::chrono::milliseconds settle{0};
    std::chrono::seconds idle{0};
    std::size_t progress = 0; // with --pid: the daemon's CPU every `progress` completed handshakes
};

[[noreturn]] void usage(int code) {
    (code == 0 ? std::cout : std::cerr)
        << "usage: shipbench --host H --port P --ski SKI [--connections N] [--concurrency C] [--messages M]\n"
           "                 [--interval-us U] [--pid PID] [--hold] [--receive N] [--settle MS] [--idle S]\n"
           "                 [--sigterm] [--deadline S] [--progress N] [--json]\n"
           "  --interval-us U  send the M messages one every U microseconds per connection (latency, not "
           "burst)\n"
           "  --ski SKI        the daemon's SKI (40 hex; shipd --print-ski, or its READY STATUS line)\n"
           "  --hold           keep every connection in data exchange until the end (idle-connection cost)\n"
           "  --receive N      with --hold: also wait until N data messages came from the daemon (SendData)\n"
           "  --idle S         with --hold and --pid: the daemon's CPU over S seconds once all are held\n"
           "  --settle MS      with --hold: wait this long before the 'after' memory reading\n"
           "  --sigterm        with --pid: after the run send SIGTERM and time until the process is gone\n"
           "  --deadline S     give up on unfinished connections after S seconds (default 60)\n"
           "  --progress N     with --pid: the daemon's CPU per handshake for every N completed ones (does "
           "the\n"
           "                   cost grow with the connections already held?)\n";
    std::exit(code);
}

unsigned long number(const char* flag, const char* text, unsigned long max) {
    char* end = nullptr;
    errno = 0;
    const unsigned long value = std::strtoul(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value > max) {
        std::cerr << "shipbench: " << flag << " wants a number up to " << max << ", not '" << text << "'\n";
        std::exit(2);
    }
    return value;
}

Options parse(int argc, char** argv) {
    enum {
        o_host = 1,
        o_port,
        o_ski,
        o_conn,
        o_conc,
        o_msg,
        o_pid,
        o_json,
        o_hold,
        o_settle,
        o_term,
        o_dl,
        o_recv,
        o_interval,
        o_idle,
        o_progress,
        o_help
    };
    static const option longs[] = {{"host", required_argument, nullptr, o_host},
                                   {"port", required_argument, nullptr, o_port},
                                   {"ski", required_argument, nullptr, o_ski},
                                   {"connections", required_argument, nullptr, o_conn},
                                   {"concurrency", required_argument, nullptr, o_conc},
                                   {"messages", required_argument, nullptr, o_msg},
                                   {"pid", required_argument, nullptr, o_pid},
                                   {"json", no_argument, nullptr, o_json},
                                   {"hold", no_argument, nullptr, o_hold},
                                   {"settle", required_argument, nullptr, o_settle},
                                   {"sigterm", no_argument, nullptr, o_term},
                                   {"deadline", required_argument, nullptr, o_dl},
                                   {"receive", required_argument, nullptr, o_recv},
                                   {"interval-us", required_argument, nullptr, o_interval},
                                   {"idle", required_argument, nullptr, o_idle},
                                   {"progress", required_argument, nullptr, o_progress},
                                   {"help", no_argument, nullptr, o_help},
                                   {nullptr, 0, nullptr, 0}};
    Options o;
    o.plan.host = "127.0.0.1";
    int c = 0;
    while ((c = getopt_long(argc, argv, "", longs, nullptr)) != -1) {
        switch (c) {
        case o_host:
            o.plan.host = optarg;
            break;
        case o_port:
            o.plan.port = static_cast<std::uint16_t>(number("--port", optarg, 65535));
            break;
        case o_ski:
            o.plan.ski = optarg;
            break;
        case o_conn:
            o.connections = number("--connections", optarg, 1'000'000);
            break;
        case o_conc:
            o.plan.concurrency = number("--concurrency", optarg, 1'000'000);
            break;
        case o_msg:
            o.plan.messages = number("--messages", optarg, 1'000'000);
            break;
        case o_pid:
            o.pid = static_cast<pid_t>(number("--pid", optarg, 1u << 22));
            break;
        case o_json:
            o.json = true;
            break;
        case o_hold:
            o.plan.hold = true;
            break;
        case o_settle:
            o.settle = std::chrono::milliseconds(number("--settle", optarg, 600'000));
            break;
        case o_term:
            o.sigterm = true;
            break;
        case o_dl:
            o.plan.deadline = std::chrono::seconds(number("--deadline", optarg, 86'400));
            break;
        case o_interval:
            o.plan.interval = std::chrono::microseconds(number("--interval-us", optarg, 60'000'000));
            break;
        case o_idle:
            o.idle = std::chrono::seconds(number("--idle", optarg, 3600));
            break;
        case o_progress:
            o.progress = number("--progress", optarg, 1'000'000);
            break;
        case o_recv:
            o.plan.expect_received = number("--receive", optarg, 100'000'000);
            break;
        case o_help:
            usage(0);
        default:
            usage(2);
        }
    }
    if (optind != argc || o.plan.port == 0 || o.plan.ski.size() != 40 || o.connections == 0 ||
        o.plan.concurrency == 0)
        usage(2);
    if (o.plan.expect_received > 0 && !o.plan.hold) {
        std::cerr << "shipbench: --receive needs --hold\n";
        std::exit(2);
    }
    if (o.sigterm && o.pid == 0) {
        std::cerr << "shipbench: --sigterm needs --pid\n";
        std::exit(2);
    }
    return o;
}

double percentile(std::vector<double> sorted, double p) {
    if (sorted.empty()) return 0;
    // Nearest rank: the smallest value with at least p% of the samples at or below it.
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

double seconds(bench::Clock::time_point from, bench::Clock::time_point to) {
    return std::chrono::duration<double>(to - from).count();
}

struct Report {
    std::size_t connections = 0, concurrency = 0, messages_per_connection = 0;
    double identities_s = 0;
    bench::LoadResult load;
    double p50 = 0, p90 = 0, p99 = 0, max = 0, handshakes_per_s = 0, messages_per_s = 0, wall_s = 0;
    double received_per_s = 0, receive_p50 = 0, receive_p99 = 0, receive_max = 0;
    std::optional<long> rss_before, rss_after;
    std::optional<double> cpu_s, sigterm_exit_ms, idle_cpu_percent;
    double own_cpu_s = 0;
    std::vector<double> block_cpu_ms; // --progress: daemon CPU ms per handshake, one per block of N
};

std::optional<double> per_connection_kib(const Report& r) {
    if (!r.rss_before || !r.rss_after || r.load.completed == 0) return std::nullopt;
    return static_cast<double>(*r.rss_after - *r.rss_before) / static_cast<double>(r.load.completed);
}

void print_table(const Report& r) {
    std::printf("shipbench: %zu connections, %zu at a time, %zu data messages each\n", r.connections,
                r.concurrency, r.messages_per_connection);
    std::printf("  %-34s %zu\n", "handshakes completed", r.load.completed);
    std::printf("  %-34s %.3f s (excluded from timing)\n", "certificate generation", r.identities_s);
    std::printf("  %-34s p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms\n", "handshake latency (TCP→data)", r.p50,
                r.p90, r.p99, r.max);
    std::printf("  %-34s %.1f /s over %.3f s\n", "handshakes", r.handshakes_per_s, r.wall_s);
    if (r.messages_per_connection > 0)
        std::printf("  %-34s %zu sent, %.1f /s (written to the socket)\n", "data messages",
                    r.load.messages_sent, r.messages_per_s);
    if (r.load.messages_received > 0)
        std::printf("  %-34s %zu, %.1f /s, latency p50 %.3f  p99 %.3f  max %.3f ms\n",
                    "data messages received", r.load.messages_received, r.received_per_s, r.receive_p50,
                    r.receive_p99, r.receive_max);
    std::size_t failed = 0;
    for (const auto& [reason, count] : r.load.failures)
        failed += count;
    std::printf("  %-34s %zu\n", "failures", failed);
    for (const auto& [reason, count] : r.load.failures)
        std::printf("    %6zu  %s\n", count, reason.c_str());
    if (r.rss_before) std::printf("  %-34s %ld KiB\n", "daemon RSS before", *r.rss_before);
    if (r.rss_after) std::printf("  %-34s %ld KiB\n", "daemon RSS after", *r.rss_after);
    if (auto per = per_connection_kib(r))
        std::printf("  %-34s %.1f KiB\n", "daemon RSS per connection", *per);
    if (r.cpu_s) std::printf("  %-34s %.3f s\n", "daemon CPU during the run", *r.cpu_s);
    std::printf("  %-34s %.3f s\n", "shipbench's own CPU", r.own_cpu_s);
    if (r.idle_cpu_percent)
        std::printf("  %-34s %.2f %%\n", "daemon CPU while all are held", *r.idle_cpu_percent);
    if (!r.block_cpu_ms.empty()) {
        std::printf("  %-34s", "daemon CPU ms/handshake per block");
        for (const double ms : r.block_cpu_ms)
            std::printf(" %.2f", ms);
        std::printf("\n");
    }
    if (r.sigterm_exit_ms) std::printf("  %-34s %.1f ms\n", "SIGTERM → exit", *r.sigterm_exit_ms);
}

void print_json(const Report& r) {
    rapidjson::OStreamWrapper out(std::cout);
    rapidjson::PrettyWriter<rapidjson::OStreamWrapper> w(out);
    auto key_num = [&](const char* key, double value) {
        w.Key(key);
        w.Double(value);
    };
    auto key_opt = [&](const char* key, std::optional<double> value) {
        w.Key(key);
        if (value)
            w.Double(*value);
        else
            w.Null();
    };
    w.StartObject();
    w.Key("connections"), w.Uint64(r.connections);
    w.Key("concurrency"), w.Uint64(r.concurrency);
    w.Key("messages_per_connection"), w.Uint64(r.messages_per_connection);
    w.Key("completed"), w.Uint64(r.load.completed);
    key_num("identities_s", r.identities_s);
    w.Key("handshake_ms");
    w.StartObject();
    key_num("p50", r.p50);
    key_num("p90", r.p90);
    key_num("p99", r.p99);
    key_num("max", r.max);
    w.EndObject();
    key_num("handshakes_per_s", r.handshakes_per_s);
    key_num("wall_s", r.wall_s);
    w.Key("messages_sent"), w.Uint64(r.load.messages_sent);
    key_num("messages_per_s", r.messages_per_s);
    w.Key("messages_received"), w.Uint64(r.load.messages_received);
    key_num("received_per_s", r.received_per_s);
    w.Key("receive_ms");
    w.StartObject();
    key_num("p50", r.receive_p50);
    key_num("p99", r.receive_p99);
    key_num("max", r.receive_max);
    w.EndObject();
    w.Key("failures");
    w.StartObject();
    for (const auto& [reason, count] : r.load.failures) {
        w.Key(reason.c_str());
        w.Uint64(count);
    }
    w.EndObject();
    key_opt("rss_before_kib", r.rss_before ? std::optional<double>(*r.rss_before) : std::nullopt);
    key_opt("rss_after_kib", r.rss_after ? std::optional<double>(*r.rss_after) : std::nullopt);
    key_opt("rss_per_connection_kib", per_connection_kib(r));
    key_opt("cpu_s", r.cpu_s);
    key_num("own_cpu_s", r.own_cpu_s);
    key_opt("sigterm_exit_ms", r.sigterm_exit_ms);
    key_opt("idle_cpu_percent", r.idle_cpu_percent);
    w.Key("block_cpu_ms_per_handshake");
    w.StartArray();
    for (const double ms : r.block_cpu_ms)
        w.Double(ms);
    w.EndArray();
    w.EndObject();
    std::cout << '\n';
}

double own_cpu_s() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    auto s = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
    };
    return s(usage.ru_utime) + s(usage.ru_stime);
}

} // namespace

int main(int argc, char** argv) {
    const Options options = parse(argc, argv);
    spdlog::set_level(spdlog::level::warn);
    Report report;
    report.connections = options.connections;
    report.concurrency = options.plan.concurrency;
    report.messages_per_connection = options.plan.messages;

    // Every connection gets its own node identity, made before anything is timed.
    const auto gen_start = bench::Clock::now();
    std::vector<tls::Identity> identities;
    identities.reserve(options.connections);
    for (std::size_t i = 0; i < options.connections; ++i)
        identities.push_back(tls::generate_identity({"shipbench-" + std::to_string(i), "", "", ""}));
    report.identities_s = seconds(gen_start, bench::Clock::now());

    if (options.pid != 0) report.rss_before = bench::rss_kib(options.pid);
    std::optional<std::chrono::microseconds> cpu_before;
    if (options.pid != 0) cpu_before = bench::cpu_time(options.pid);
    const double own_before = own_cpu_s();

    bench::LoadPlan plan = options.plan;
    if (options.progress > 0 && options.pid != 0) {
        // Sampled on our strand: /proc/PID/stat costs microseconds, once per block.
        auto last = cpu_before;
        plan.on_completed = [&report, &options, last](std::size_t completed) mutable {
            if (completed % options.progress != 0) return;
            const auto now = bench::cpu_time(options.pid);
            if (now && last)
                report.block_cpu_ms.push_back(
                    std::chrono::duration<double, std::milli>(*now - *last).count() /
                    static_cast<double>(options.progress));
            last = now;
        };
    }

    std::stop_source stop;
    auto strand = std::make_unique<net::Strand>(stop.get_token());
    std::mutex mutex;
    std::condition_variable changed;
    bool done = false;
    auto run = std::make_unique<bench::LoadRun>(*strand, plan, std::move(identities), [&] {
        std::lock_guard lock(mutex);
        done = true;
        changed.notify_all();
    });
    std::thread runner([&] { strand->run(); });
    strand->post([&] { run->start(); });
    {
        std::unique_lock lock(mutex);
        changed.wait(lock, [&] { return done; }); // LoadRun's own deadline bounds this
    }
    report.own_cpu_s = own_cpu_s() - own_before;
    if (options.pid != 0) {
        if (auto after = bench::cpu_time(options.pid); after && cpu_before)
            report.cpu_s = std::chrono::duration<double>(*after - *cpu_before).count();
        std::this_thread::sleep_for(options.settle); // lets the daemon finish its side before the reading
        report.rss_after = bench::rss_kib(options.pid);
        if (options.idle.count() > 0 && options.plan.hold) {
            // The connections are still up (our strand keeps them): the daemon only keeps them alive.
            const auto before = bench::cpu_time(options.pid);
            std::this_thread::sleep_for(options.idle);
            if (const auto after = bench::cpu_time(options.pid); before && after)
                report.idle_cpu_percent = 100.0 * std::chrono::duration<double>(*after - *before).count() /
                                          std::chrono::duration<double>(options.idle).count();
        }
    }
    if (options.sigterm) {
        const auto sent = bench::Clock::now();
        if (kill(options.pid, SIGTERM) == 0 && bench::wait_gone(options.pid, 30s))
            report.sigterm_exit_ms =
                std::chrono::duration<double, std::milli>(bench::Clock::now() - sent).count();
    }
    stop.request_stop();
    runner.join();
    // The strand is parked (Strand contract 5): this thread may drop what the run built.
    report.load = run->result();
    run.reset();
    strand.reset();

    std::vector<double> sorted = report.load.handshake_ms;
    std::sort(sorted.begin(), sorted.end());
    report.p50 = percentile(sorted, 50);
    report.p90 = percentile(sorted, 90);
    report.p99 = percentile(sorted, 99);
    report.max = sorted.empty() ? 0 : sorted.back();
    const auto& l = report.load;
    if (l.completed > 0) {
        report.wall_s = seconds(l.first_dial, l.last_completed);
        report.handshakes_per_s = report.wall_s > 0 ? static_cast<double>(l.completed) / report.wall_s : 0;
    }
    if (l.messages_sent > 0 && l.last_flushed > l.first_send)
        report.messages_per_s = static_cast<double>(l.messages_sent) / seconds(l.first_send, l.last_flushed);

    if (l.messages_received > 1 && l.last_received > l.first_received)
        report.received_per_s =
            static_cast<double>(l.messages_received - 1) / seconds(l.first_received, l.last_received);
    std::vector<double> received = l.receive_ms;
    std::sort(received.begin(), received.end());
    report.receive_p50 = percentile(received, 50);
    report.receive_p99 = percentile(received, 99);
    report.receive_max = received.empty() ? 0 : received.back();

    if (options.json)
        print_json(report);
    else
        print_table(report);
    std::size_t failed = 0;
    for (const auto& [reason, count] : l.failures)
        failed += count;
    return failed == 0 ? 0 : 1;
}
