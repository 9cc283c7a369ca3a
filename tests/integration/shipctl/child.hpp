// A program the test starts as a user would from a shell: in its own process group (so an interrupt reaches
// it and everything it started, like Ctrl-C in a terminal), with its output read under a deadline and
// killed by its process-group id at the end. `run` is the one-shot form with separate stdout and stderr.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ship::test {

// Extra or replaced environment variables for a child.
using EnvOverrides = std::map<std::string, std::string>;

struct RunResult {
    int status = -1; // exit code, 128+signal, or -1 when it ran past the deadline (then killed)
    std::string out, err;
};

// Runs argv[0] (searched in PATH) to completion, feeding `input` on stdin.
RunResult run(const std::vector<std::string>& argv, const EnvOverrides& env = {},
              const std::string& input = {}, std::chrono::milliseconds timeout = std::chrono::seconds(60));

class Child {
public:
    // stdout and stderr are merged into one stream; stdin is a pipe the test writes to.
    Child(const std::vector<std::string>& argv, const EnvOverrides& env = {});
    ~Child();
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    void write(const std::string& text);
    void close_input();
    // Reads output until it contains `text` after position `from`, or the deadline; returns whether it does.
    bool wait_for(const std::string& text, std::chrono::milliseconds timeout, std::size_t from = 0);
    const std::string& output() const { return output_; }
    // Sends `sig` to the whole process group.
    void signal(int sig);
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    pid_t pid() const { return pid_; }

private:
    void read_some(int timeout_ms);
    void reap();
    pid_t pid_ = -1;
    bool eof_ = false;
    int in_ = -1, out_ = -1;
    std::string output_;
    std::optional<int> status_;
};

} // namespace ship::test
