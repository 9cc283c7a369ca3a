// The TXT record and QR text shipd announces, byte for byte, and how a peer's TXT is judged (ship-protocol
// §7).
#include <catch2/catch.hpp>

#include <avahi-common/strlst.h>

#include <algorithm>
#include <stdexcept>

#include "mdns/avahi_session.hpp"
#include "mdns/txt.hpp"

using namespace ship::mdns;

namespace {

const std::string ski = "0123456789abcdef0123456789abcdef01234567";

LocalService demo() {
    LocalService s;
    s.ship_id = "Demo-EMS-0001";
    s.ski = "0123 4567 89AB CDEF 0123-4567-89ab-cdef-0123-4567"; // as a user might type it
    s.brand = "Demo";
    s.model = "EMS 1";
    s.type = "EnergyManagementSystem";
    s.port = 4711;
    return s;
}

std::vector<std::string> peer_txt() {
    return {"txtvers=1",   "path=/ship/",          "id=Wallbox-42", "ski=" + ski,  "brand=Volt",
            "model=WB 11", "type=ChargingStation", "register=true", "serial=SN 9", "cat=3,7"};
}

std::vector<std::string> without(std::vector<std::string> txt, const std::string& key) {
    txt.erase(std::remove_if(txt.begin(), txt.end(),
                             [&](const std::string& s) { return s.rfind(key + "=", 0) == 0; }),
              txt.end());
    return txt;
}

std::string encoded(const LocalService& s, const std::string& key) {
    for (const auto& item : encode_txt(s))
        if (item.rfind(key + "=", 0) == 0) return item.substr(key.size() + 1);
    return "<absent>";
}

} // namespace

TEST_CASE("TXT: keys in SHIP's order, SKI canonical, cat=2 by default, no serial when unset", "[mdns][txt]") {
    const std::vector<std::string> want = {"txtvers=1",
                                           "path=/ship/",
                                           "id=Demo-EMS-0001",
                                           "ski=" + ski,
                                           "brand=Demo",
                                           "model=EMS 1",
                                           "type=EnergyManagementSystem",
                                           "register=false",
                                           "cat=2"};
    CHECK(encode_txt(demo()) == want);
}

TEST_CASE("TXT: serial sits between register and cat; register and categories follow the service",
          "[mdns][txt]") {
    auto s = demo();
    s.serial = "SN-0042";
    s.auto_register = true;
    s.categories = {1, 2, 7};
    const auto txt = encode_txt(s);
    REQUIRE(txt.size() == 10);
    CHECK(txt[7] == "register=true");
    CHECK(txt[8] == "serial=SN-0042");
    CHECK(txt[9] == "cat=1,2,7");
}

TEST_CASE("TXT: brand/model/type/serial are cut to 32 bytes, never inside a UTF-8 sequence", "[mdns][txt]") {
    auto s = demo();
    s.brand = std::string(32, 'b') + "overflow";
    s.model = std::string(31, 'm') + "\xC3\xA9";       // 'é' would end at byte 33: dropped whole
    s.type = std::string(30, 't') + "\xC3\xA9";        // exactly 32 bytes: kept
    s.serial = std::string(30, 's') + "\xE2\x82\xAC!"; // '€' spans bytes 31..33: dropped whole
    CHECK(encoded(s, "brand") == std::string(32, 'b'));
    CHECK(encoded(s, "model") == std::string(31, 'm'));
    CHECK(encoded(s, "type") == std::string(30, 't') + "\xC3\xA9");
    CHECK(encoded(s, "serial") == std::string(30, 's'));

    CHECK(cut_utf8("\xF0\x9F\x94\x8C", 3).empty()); // a 4-byte sequence never half-kept
    CHECK(cut_utf8("ab\xF0\x9F\x94\x8C", 6) == "ab\xF0\x9F\x94\x8C");
    CHECK(cut_utf8("abc", 2) == "ab");
}

TEST_CASE("TXT: '=' and ';' are removed from free text before the cut; in the SHIP ID they are refused",
          "[mdns][txt]") {
    auto s = demo();
    s.brand = "A=B;C";
    s.model = "=" + std::string(32, 'm'); // removing '=' first keeps 32 useful bytes
    CHECK(encoded(s, "brand") == "ABC");
    CHECK(encoded(s, "model") == std::string(32, 'm'));

    s.ship_id = "EMS=1";
    CHECK_THROWS_AS(encode_txt(s), std::invalid_argument);
    REQUIRE(check(s));
    CHECK(check(s)->find("'='") != std::string::npos);
}

TEST_CASE("TXT: the SHIP ID may have 63 bytes, not 64, and must not be empty", "[mdns][txt]") {
    auto s = demo();
    s.ship_id = std::string(63, 'x');
    CHECK_FALSE(check(s));
    CHECK(encoded(s, "id") == std::string(63, 'x'));
    s.ship_id = std::string(64, 'x');
    REQUIRE(check(s));
    CHECK(check(s)->find("64 bytes") != std::string::npos);
    CHECK_THROWS_AS(encode_txt(s), std::invalid_argument);
    s.ship_id.clear();
    CHECK(check(s) == "SHIP ID is empty");
}

TEST_CASE("TXT: a service with a bad SKI, no category, a zero category or non-UTF-8 text is refused",
          "[mdns][txt]") {
    auto s = demo();
    s.ski = "0123";
    REQUIRE(check(s));
    CHECK(check(s)->find("SKI '0123'") != std::string::npos);

    s = demo();
    s.categories.clear();
    CHECK(check(s));
    s.categories = {2, 0};
    REQUIRE(check(s));
    CHECK(check(s)->find("category 0") != std::string::npos);

    s = demo();
    s.brand = "\xC3"; // truncated sequence
    CHECK(check(s) == "brand is not UTF-8");
    s.brand = "\xED\xA0\x80"; // a UTF-16 surrogate
    CHECK(check(s) == "brand is not UTF-8");
    s.brand = "Gr\xC3\xBCn"; // "Grün"
    CHECK_FALSE(check(s));
}

TEST_CASE("TXT wire order: what Avahi sends is exactly encode_txt's order", "[mdns][txt]") {
    auto s = demo();
    s.serial = "7";
    const auto txt = encode_txt(s);
    AvahiStringList* list = to_avahi_txt(txt);
    std::vector<std::uint8_t> wire(avahi_string_list_serialize(list, nullptr, 0));
    avahi_string_list_serialize(list, wire.data(), wire.size());
    std::vector<std::uint8_t> want;
    for (const auto& item : txt) {
        want.push_back(static_cast<std::uint8_t>(item.size()));
        want.insert(want.end(), item.begin(), item.end());
    }
    CHECK(wire == want);

    AvahiStringList* parsed = nullptr;
    REQUIRE(avahi_string_list_parse(wire.data(), wire.size(), &parsed) == 0);
    CHECK(from_avahi_txt(parsed) == txt);
    avahi_string_list_free(parsed);
    avahi_string_list_free(list);
}

TEST_CASE("Peer TXT: every field is read; the SKI is normalised", "[mdns][txt]") {
    auto txt = peer_txt();
    txt[3] = "ski=0123 4567 89AB CDEF 0123 4567 89AB CDEF 0123 4567";
    const auto result = parse_txt(txt);
    REQUIRE(result.entry);
    const auto& e = *result.entry;
    CHECK(e.ski == ski);
    CHECK(e.ship_id == "Wallbox-42");
    CHECK(e.path == "/ship/");
    CHECK(e.brand == "Volt");
    CHECK(e.model == "WB 11");
    CHECK(e.type == "ChargingStation");
    CHECK(e.serial == "SN 9");
    CHECK(e.categories == std::vector<int>{3, 7});
    CHECK(e.auto_register);
}

TEST_CASE("Peer TXT: what we announce reads back as the same peer", "[mdns][txt]") {
    auto s = demo();
    s.serial = "S1";
    s.categories = {2, 5};
    const auto result = parse_txt(encode_txt(s));
    REQUIRE(result.entry);
    CHECK(result.entry->ski == ski);
    CHECK(result.entry->ship_id == s.ship_id);
    CHECK(result.entry->brand == s.brand);
    CHECK(result.entry->serial == "S1");
    CHECK(result.entry->categories == s.categories);
    CHECK_FALSE(result.entry->auto_register);
}

TEST_CASE("Peer TXT: each mandatory key missing is named in the reason", "[mdns][txt]") {
    for (const std::string key : {"txtvers", "id", "path", "ski", "register"}) {
        CAPTURE(key);
        const auto result = parse_txt(without(peer_txt(), key));
        CHECK_FALSE(result.entry);
        CHECK(result.error == "TXT lacks the mandatory key '" + key + "'");
    }
}

TEST_CASE("Peer TXT: txtvers other than 1, a bad SKI, a bad register or empty id/path are refused",
          "[mdns][txt]") {
    auto txt = peer_txt();
    txt[0] = "txtvers=2";
    CHECK(parse_txt(txt).error == "txtvers=2 is not supported (want 1)");

    txt = peer_txt();
    txt[3] = "ski=0123456789abcdef0123456789abcdef0123456"; // 39 digits
    CHECK(parse_txt(txt).error == "TXT ski '0123456789abcdef0123456789abcdef0123456' is not 40 hex digits");
    txt[3] = "ski=0123456789abcdef0123456789abcdef0123456g";
    CHECK_FALSE(parse_txt(txt).entry);

    txt = peer_txt();
    txt[7] = "register=yes";
    CHECK(parse_txt(txt).error == "TXT register='yes' is not true or false");

    txt = peer_txt();
    txt[2] = "id=";
    CHECK(parse_txt(txt).error == "TXT id (the SHIP ID) is empty");
    txt = peer_txt();
    txt[1] = "path=";
    CHECK(parse_txt(txt).error == "TXT path is empty");
}

TEST_CASE("Peer TXT: keys are case-insensitive, the first of a repeated key wins, order does not matter",
          "[mdns][txt]") {
    auto txt = peer_txt();
    std::reverse(txt.begin(), txt.end());
    txt[0] = "CAT=3,7";
    txt.push_back("register=false"); // a later duplicate is ignored
    txt.push_back("novalue");        // a boolean attribute SHIP does not define
    const auto result = parse_txt(txt);
    REQUIRE(result.entry);
    CHECK(result.entry->auto_register);
    CHECK(result.entry->categories == std::vector<int>{3, 7});
}

TEST_CASE("Peer TXT: optional keys may be absent; an unreadable cat is dropped, the peer kept",
          "[mdns][txt]") {
    auto txt = std::vector<std::string>{"txtvers=1", "id=X", "path=/ship/", "ski=" + ski, "register=false"};
    auto result = parse_txt(txt);
    REQUIRE(result.entry);
    CHECK(result.entry->brand.empty());
    CHECK(result.entry->categories.empty());
    txt.push_back("cat=two");
    result = parse_txt(txt);
    REQUIRE(result.entry);
    CHECK(result.entry->categories.empty());
}

TEST_CASE("Categories: format and parse", "[mdns][txt]") {
    CHECK(format_categories({2}) == "2");
    CHECK(format_categories({1, 2, 7}) == "1,2,7");
    CHECK(parse_categories("1,2,7") == std::vector<int>{1, 2, 7});
    CHECK(parse_categories(" 4 , 5") == std::vector<int>{4, 5});
    for (const char* bad : {"", ",", "1,,2", "1,2,", "a", "0", "-1", "2x", "99999999999"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_categories(bad));
    }
}

TEST_CASE("QR text: SHIP's installation format, from the same cut values", "[mdns][qr]") {
    auto s = demo();
    CHECK(installation_qr_text(s) ==
          "SHIP;SKI:" + ski +
              ";ID:Demo-EMS-0001;BRAND:Demo;TYPE:EnergyManagementSystem;MODEL:EMS 1;"
              "CAT:2;ENDSHIP;");
    s.serial = "SN;1";
    s.categories = {2, 4};
    s.brand = std::string(40, 'b');
    CHECK(installation_qr_text(s) ==
          "SHIP;SKI:" + ski + ";ID:Demo-EMS-0001;BRAND:" + std::string(32, 'b') +
              ";TYPE:EnergyManagementSystem;MODEL:EMS 1;SERIAL:SN1;CAT:2,4;ENDSHIP;");
    s.ski = "nonsense";
    CHECK_THROWS_AS(installation_qr_text(s), std::invalid_argument);
}
