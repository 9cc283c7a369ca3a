#include "ship/ski.hpp"

#include <catch2/catch.hpp>

TEST_CASE("SKI input is normalised to 40 lower-case hex", "[ski]") {
    const std::string canonical = "5a1c0f2e00aabbccddeeff00112233445566778f";
    CHECK(ship::normalize_ski(canonical) == canonical);
    CHECK(ship::normalize_ski("5A1C0F2E 00AABBCC-DDEEFF00 11223344 5566778F") == canonical);
    CHECK(ship::normalize_ski("5a-1c-0f-2e-00-aa-bb-cc-dd-ee-ff-00-11-22-33-44-55-66-77-8f") == canonical);
}

TEST_CASE("anything that is not 40 hex characters is refused", "[ski]") {
    CHECK_FALSE(ship::normalize_ski(""));
    CHECK_FALSE(ship::normalize_ski("5a1c0f2e00aabbccddeeff00112233445566778"));   // 39
    CHECK_FALSE(ship::normalize_ski("5a1c0f2e00aabbccddeeff00112233445566778f0")); // 41
    CHECK_FALSE(ship::normalize_ski("5a1c0f2e00aabbccddeeff00112233445566778g"));  // not hex
    CHECK_FALSE(ship::normalize_ski("5a:1c:0f:2e:00:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:8f"));
}

TEST_CASE("only the canonical form is canonical; leading zeros are kept", "[ski]") {
    CHECK(ship::is_canonical_ski("0000000000000000000000000000000000000001"));
    CHECK_FALSE(ship::is_canonical_ski("000000000000000000000000000000000000001"));
    CHECK_FALSE(ship::is_canonical_ski("5A1C0F2E00AABBCCDDEEFF00112233445566778F"));
}
