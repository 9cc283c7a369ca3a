// A connection handle for tests: counts how often its real close ran and remembers the code and reason.
// in_data_exchange is set by the test.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "hub/connection_handle.hpp"

namespace ship::hub::test {

class FakeConnection final : public ConnectionHandle {
public:
    FakeConnection(std::string ski, Direction direction, int number = 0)
        : ConnectionHandle(std::move(ski), direction)
        , serial(number) {}

    bool in_data_exchange() const override { return data_exchange; }
    std::uint64_t id() const override { return static_cast<std::uint64_t>(serial); }

    int serial;
    bool data_exchange = false;
    int closes = 0;
    std::uint16_t close_code = 0;
    std::string close_reason;
    std::function<void()> on_close; // the transport's close follows, later

protected:
    void do_close(std::uint16_t code, std::string_view reason) override {
        ++closes;
        close_code = code;
        close_reason = reason;
        if (on_close) on_close();
    }
};

inline std::shared_ptr<FakeConnection> fake(const std::string& ski, Direction direction, int serial = 0) {
    return std::make_shared<FakeConnection>(ski, direction, serial);
}

// Two SKIs in canonical form whose order is decided late in the string, as a string compare must.
inline const std::string small_ski = "0123456789abcdef0123456789abcdef01234567";
inline const std::string large_ski = "0123456789abcdef0123456789abcdef0123456a";

} // namespace ship::hub::test
