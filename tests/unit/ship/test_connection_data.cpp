// ship::Connection, data exchange (SHIP 13.4.5): data both ways, and malformed input dropped (MSG_001-003).
// Exact bytes sent and exact close code and reason, on a virtual clock; TC_SHIP_* names where one applies.
#include "ship/connection.hpp"

#include <catch2/catch.hpp>

#include "harness.hpp"

using namespace std::chrono_literals;
using namespace ship;
using namespace ship::test;
using Sent = std::vector<Bytes>;

TEST_CASE("DATA: send_data converts plain JSON to the EEBUS data message", "[connection][data]") {
    Harness h;
    const std::string plain = R"({"datagram":{"header":{"msgCounter":1},"payload":{"cmd":[{"x":{}}]}}})";
    CHECK(h.conn.send_data(plain) == "not in data exchange (state idle)");
    to_data(h, Role::client);
    CHECK(h.conn.send_data(plain) == std::nullopt);
    h.pump();
    CHECK(
        h.take_sent() ==
        Sent{make_frame(
            MessageType::data,
            R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[{"header":[{"msgCounter":1}]},{"payload":[{"cmd":[[{"x":[]}]]}]}]}}]})")});
    CHECK(h.conn.send_data("[1]") == "the data payload must be a JSON object");
    CHECK(h.conn.send_data("{").value().starts_with("invalid JSON"));
}

TEST_CASE("DATA: data with another protocolId or a non-object payload is dropped with a notice",
          "[connection][data]") {
    Harness h;
    to_data(h, Role::client);
    h.receive(
        make_frame(MessageType::data, R"({"data":[{"header":[{"protocolId":"ee2.0"}]},{"payload":{}}]})"));
    h.receive(
        make_frame(MessageType::data, R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":5}]})"));
    CHECK(h.data.empty());
    CHECK(h.notices == std::vector<std::string>{"data: ignored a message with protocolId 'ee2.0'",
                                                "data: ignored a message whose payload is not an object"});
    require_open(h);
}

TEST_CASE("DATA: a payload number too large for a double is dropped, never delivered cut off",
          "[connection][data][fuzz]") {
    // Found by tests/fuzz: the application received the truncated text {"datagram":{"x":
    Harness h;
    to_data(h, Role::client);
    h.receive(make_frame(
        MessageType::data,
        R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[{"x":2e308}]}}]})"));
    CHECK(h.data.empty());
    CHECK(h.notices == std::vector<std::string>{
                           "ignored a bad message in data-exchange: a number in the JSON is too large for "
                           "a double"});
    require_open(h);
}

TEST_CASE("DATA: a number far below a double's range arrives as zero and the link keeps working",
          "[connection][data][fuzz]") {
    // Found by tests/fuzz: RapidJSON's full-precision parse crashed (SIGSEGV) on it, ending the daemon.
    Harness h;
    to_data(h, Role::client);
    h.receive(make_frame(MessageType::data,
                         R"({"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[{"x":0.)" +
                             std::string(330, '0') + R"(15}]}}]})"));
    CHECK(h.data == std::vector<std::string>{R"({"datagram":{"x":0.0}})"});
    h.receive(vec("access-methods-request"));
    CHECK(h.take_sent() == Sent{own_access_methods()});
    require_open(h);
}

TEST_CASE("TC_SHIP_MSG_001: a bare type byte is dropped and the link keeps working", "[connection][msg]") {
    Harness h;
    to_data(h, Role::server);
    h.receive(Bytes{0x02});
    CHECK(h.notices.back() == "ignored a bad message in data-exchange: message shorter than 2 bytes");
    h.receive(vec("access-methods-request"));
    CHECK(h.take_sent() == Sent{own_access_methods()});
    require_open(h);
}

TEST_CASE("TC_SHIP_MSG_002: an unknown type byte is dropped and never acted on", "[connection][msg]") {
    Harness h;
    to_data(h, Role::client);
    h.receive(Bytes{0xFF, 0x01});
    CHECK(h.notices.back() == "ignored a bad message in data-exchange: unknown SHIP message type byte 255");
    CHECK(h.take_sent().empty());
    h.receive(vec("access-methods-request"));
    CHECK(h.take_sent() == Sent{own_access_methods()});
    require_open(h);
}

TEST_CASE("TC_SHIP_MSG_003: a request with whitespace everywhere is answered", "[connection][msg]") {
    Harness h;
    to_data(h, Role::client);
    h.receive(control(" \t\r\n{ \t\r\n\"accessMethodsRequest\" \t\r\n: \t\r\n[ \t\r\n] \t\r\n} \t\r\n"));
    CHECK(h.take_sent() == Sent{own_access_methods()});
}

TEST_CASE("MSG: invalid JSON, unknown messages and stray handshake messages in data exchange are ignored",
          "[connection][msg]") {
    Harness h;
    to_data(h, Role::client);
    h.receive(control("{\"accessMethodsRequest\":"));
    h.receive(control(R"({"somethingNew":[]})"));
    h.receive(vec("hello-ready"));
    h.receive(vec("pin-none"));
    h.receive(control(std::string(100000, '[')));
    CHECK(h.notices ==
          std::vector<std::string>{
              "ignored a bad message in data-exchange: invalid JSON at offset 24: Invalid value.",
              "ignored a bad message in data-exchange: unknown message 'somethingNew'",
              "data exchange: ignored connectionHello",
              "data exchange: ignored connectionPinState",
              "ignored a bad message in data-exchange: JSON nested deeper than 64 levels (at offset 64)",
          });
    CHECK(h.take_sent().empty());
    require_open(h);
    CHECK(h.conn.in_data_exchange());
}
