// A minimal node for the namespace test: announces itself with lib/mdns, browses for peers and prints what it
// sees, one line per peer per change, so a script can wait for exact lines. Reads commands on stdin.
//
//   mdns-probe --ship-id ID --ski SKI --port N [--brand B] [--model M] [--type T] [--serial S] [--cat 1,2]
//              [--register true|false]
//   stdin: "register true|false" (live TXT change), "quit" (clean stop: withdraw, exit 0). SIGTERM = quit.
//   stdout: "established <instance>", "peer ski=… id=… instance=… brand=… model=… type=… serial=… cat=…
//            register=… path=… port=… address=<best> v6=<first IPv6 or ->", "gone ski=…", "stopped".
#include <condition_variable>
#include <csignal>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "mdns/browser.hpp"
#include "mdns/publisher.hpp"

using namespace ship::mdns;

namespace {

// The strand stand-in: closures posted from any thread run one by one on the main thread.
class Queue {
public:
    void post(std::function<void()> fn) {
        {
            std::lock_guard lock(mutex_);
            queue_.push_back(std::move(fn));
        }
        ready_.notify_one();
    }
    std::function<void()> take() {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [this] { return !queue_.empty(); });
        auto fn = std::move(queue_.front());
        queue_.pop_front();
        return fn;
    }

private:
    std::mutex mutex_;
    std::condition_variable ready_;
    std::deque<std::function<void()>> queue_;
};

void say(const std::string& line) {
    std::cout << line << std::endl; // flushed: the script reads the file while we run
}

std::string describe(const ServiceEntry& p) {
    std::string v6 = "-";
    for (const auto& a : p.addresses)
        if (a.find(':') != std::string::npos) {
            v6 = a;
            break;
        }
    return "peer ski=" + p.ski + " id=" + p.ship_id + " instance=" + p.instance + " brand=" + p.brand +
           " model=" + p.model + " type=" + p.type + " serial=" + p.serial +
           " cat=" + format_categories(p.categories) + " register=" + (p.auto_register ? "true" : "false") +
           " path=" + p.path + " port=" + std::to_string(p.port) +
           " address=" + (p.addresses.empty() ? "-" : p.addresses.front()) + " v6=" + v6;
}

int usage(const std::string& why) {
    std::cerr << "mdns-probe: " << why << "\n";
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::map<std::string, std::string> opt;
    for (int i = 1; i + 1 < argc; i += 2)
        opt[argv[i]] = argv[i + 1];
    if (argc % 2 == 0) return usage("options come in pairs");

    LocalService self;
    self.ship_id = opt["--ship-id"];
    self.ski = opt["--ski"];
    self.brand = opt["--brand"];
    self.model = opt["--model"];
    self.type = opt["--type"];
    self.serial = opt["--serial"];
    self.auto_register = opt["--register"] == "true";
    self.port = static_cast<std::uint16_t>(std::stoi(opt.count("--port") ? opt["--port"] : "4711"));
    if (opt.count("--cat")) {
        auto categories = parse_categories(opt["--cat"]);
        if (!categories) return usage("bad --cat");
        self.categories = *categories;
    }
    if (auto reason = check(self)) return usage(*reason);

    // SIGTERM/SIGINT are taken by one thread with sigwait: blocked here, before any other thread exists.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    // Never destroyed: the detached stdin and signal threads may still hold it while main returns.
    auto& queue = *new Queue;
    const Post post = [&queue](std::function<void()> fn) { queue.post(std::move(fn)); };
    bool quit = false;

    std::map<std::string, ServiceEntry> seen;
    Browser browser(post, self.ski, [&](std::vector<ServiceEntry> peers) {
        std::map<std::string, ServiceEntry> now;
        for (auto& p : peers) {
            if (seen.count(p.ski) == 0 || !(seen[p.ski] == p)) say(describe(p));
            now[p.ski] = std::move(p);
        }
        for (const auto& [ski, old] : seen)
            if (now.count(ski) == 0) say("gone ski=" + ski);
        seen = std::move(now);
    });
    Publisher publisher(post, self);
    publisher.on_established([](const std::string& instance) { say("established " + instance); });
    publisher.start();
    browser.start();

    const auto command = [&](const std::string& line) {
        if (line == "quit") {
            quit = true;
        } else if (line == "register true" || line == "register false") {
            publisher.set_register(line == "register true");
            say("ok " + line);
        } else {
            say("unknown command: " + line);
        }
    };
    std::thread([&queue, stop_signals, command] {
        int signal = 0;
        sigwait(&stop_signals, &signal);
        queue.post([command] { command("quit"); });
    }).detach();
    std::thread([&queue, command] {
        std::string line;
        while (std::getline(std::cin, line))
            queue.post([command, line] { command(line); });
        queue.post([command] { command("quit"); });
    }).detach();

    while (!quit)
        queue.take()();
    publisher.stop();
    browser.stop();
    say("stopped");
    return 0;
}
