// A minimal node for the namespace test: announces itself with lib/mdns, browses for peers and prints what it
// sees, one line per peer per change, so a script can wait for exact lines. Reads commands on stdin.
//
//   mdns-probe --ship-id ID --ski SKI --port N [--brand B] [--model M] [--type T] [--serial S] [--cat 1,2]
//              [--register true|false]
//   stdin: "register true|false" (live TXT change), "quit" (clean stop: withdraw, exit 0). SIGTERM = quit.
//   stdout: "established <instance>", "peer ski=… id=… instance=… brand=… model=… type=… serial=… cat=…
//            register=… path=… port=… address=<best> v6=<first IPv6 or ->", "gone ski=…", "stopped".
#include <unistd.h>

#include <csignal>
#include <functional>
#include <iostream>
#include <map>
#include <string>

#include "mdns/browser.hpp"
#include "mdns/publisher.hpp"
#include "net/event_loop.hpp"

using namespace ship::mdns;

namespace {

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

    // One loop, as in shipd: Avahi, stdin and the stop signals are all events on it.
    ship::net::EventLoop loop;
    AvahiSession avahi(loop);
    std::map<std::string, ServiceEntry> seen;
    Browser browser(avahi, self.ski, [&](std::vector<ServiceEntry> peers) {
        std::map<std::string, ServiceEntry> now;
        for (auto& p : peers) {
            if (seen.count(p.ski) == 0 || !(seen[p.ski] == p)) say(describe(p));
            now[p.ski] = std::move(p);
        }
        for (const auto& [ski, old] : seen)
            if (now.count(ski) == 0) say("gone ski=" + ski);
        seen = std::move(now);
    });
    Publisher publisher(avahi, self);
    publisher.on_established([](const std::string& instance) { say("established " + instance); });
    publisher.start();
    browser.start();
    avahi.start();

    const auto command = [&](const std::string& line) {
        if (line == "quit") {
            loop.stop();
        } else if (line == "register true" || line == "register false") {
            publisher.set_register(line == "register true");
            say("ok " + line);
        } else {
            say("unknown command: " + line);
        }
    };
    ship::net::SignalWatch on_term(loop, SIGTERM, [&] { command("quit"); });
    ship::net::SignalWatch on_int(loop, SIGINT, [&] { command("quit"); });
    std::string pending;
    ship::net::IoWatch input(loop, STDIN_FILENO, [&](int) {
        char buf[256];
        const auto n = read(STDIN_FILENO, buf, sizeof buf);
        if (n <= 0) return command("quit"); // end of input
        pending.append(buf, static_cast<std::size_t>(n));
        for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
            const std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            command(line);
        }
    });
    input.set_events(ship::net::IoWatch::readable);

    loop.run();
    publisher.stop();
    browser.stop();
    avahi.stop();
    say("stopped");
    return 0;
}
