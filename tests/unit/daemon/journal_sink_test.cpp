// What shipd hands the journal for one log line: the fields `journalctl SHIP_SKI=<ski>` filters on, the
// priority journalctl -p uses, and the identifier; built from the thread's LogScope.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "journal_sink.hpp"
#include "util/log_context.hpp"

using namespace ship::daemon;
using ship::util::current_log_context;
using ship::util::LogScope;

namespace {

const std::string ski_a = "5a1c00000000000000000000000000000000beef";
const std::string ski_b = "00112233445566778899aabbccddeeff00112233";

bool has(const std::vector<std::string>& fields, const std::string& field) {
    return std::find(fields.begin(), fields.end(), field) != fields.end();
}

bool has_name(const std::vector<std::string>& fields, const std::string& name) {
    return std::any_of(fields.begin(), fields.end(),
                       [&](const std::string& f) { return f.rfind(name + "=", 0) == 0; });
}

} // namespace

TEST_CASE("a line about no peer carries message, priority and identifier only", "[daemon][journal]") {
    const auto fields = journal_fields(spdlog::level::info, "listening", current_log_context());
    CHECK(fields == std::vector<std::string>{"MESSAGE=listening", "PRIORITY=6", "SYSLOG_IDENTIFIER=shipd"});
}

TEST_CASE("spdlog levels map to syslog priorities", "[daemon][journal]") {
    CHECK(journal_priority(spdlog::level::trace) == 7);
    CHECK(journal_priority(spdlog::level::debug) == 7);
    CHECK(journal_priority(spdlog::level::info) == 6);
    CHECK(journal_priority(spdlog::level::warn) == 4);
    CHECK(journal_priority(spdlog::level::err) == 3);
    CHECK(journal_priority(spdlog::level::critical) == 2);
    CHECK(has(journal_fields(spdlog::level::warn, "x", current_log_context()), "PRIORITY=4"));
}

TEST_CASE("inside a LogScope a line carries SHIP_SKI and SHIP_STATE", "[daemon][journal]") {
    {
        LogScope scope(ski_a, "received-pairing-request");
        const auto fields = journal_fields(spdlog::level::info, "hello pending", current_log_context());
        CHECK(has(fields, "SHIP_SKI=" + ski_a));
        CHECK(has(fields, "SHIP_STATE=received-pairing-request"));
        CHECK(has(fields, "MESSAGE=hello pending"));

        scope.set_state("completed");
        CHECK(has(journal_fields(spdlog::level::info, "x", current_log_context()), "SHIP_STATE=completed"));

        {
            // A scope for another peer inside (the hub acting on a second connection) names that one, with
            // no state unless it knows one; leaving it restores the outer peer.
            LogScope inner(ski_b);
            const auto fields_b = journal_fields(spdlog::level::debug, "y", current_log_context());
            CHECK(has(fields_b, "SHIP_SKI=" + ski_b));
            CHECK_FALSE(has_name(fields_b, "SHIP_STATE"));
        }
        CHECK(has(journal_fields(spdlog::level::info, "z", current_log_context()), "SHIP_SKI=" + ski_a));
    }
    const auto after = journal_fields(spdlog::level::info, "done", current_log_context());
    CHECK_FALSE(has_name(after, "SHIP_SKI"));
    CHECK_FALSE(has_name(after, "SHIP_STATE"));
}

TEST_CASE("the scope keeps its own copy of the SKI", "[daemon][journal]") {
    auto ski = std::make_unique<std::string>(ski_a);
    LogScope scope(*ski, "error");
    ski.reset(); // the connection that owned the string is gone while the scope still logs its close
    CHECK(has(journal_fields(spdlog::level::info, "closed", current_log_context()), "SHIP_SKI=" + ski_a));
}

TEST_CASE("a multi-line message stays one MESSAGE field", "[daemon][journal]") {
    const auto fields = journal_fields(spdlog::level::err, "line one\nline two", current_log_context());
    CHECK(fields.front() == "MESSAGE=line one\nline two");
    CHECK(has(fields, "PRIORITY=3"));
}
