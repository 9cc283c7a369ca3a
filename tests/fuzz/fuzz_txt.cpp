// Fuzz target: a peer's mDNS TXT record (ship::mdns::parse_txt) and the `cat` list (parse_categories).
// The input is split into TXT strings at '\n'. Promises checked: no crash; what parse_txt accepts is sane
// and survives encode_txt -> parse_txt; parse_categories and format_categories are inverse.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "mdns/txt.hpp"
#include "ship/ski.hpp"

namespace {

namespace mdns = ship::mdns;
using ship::fuzz::printable;

void check_categories(std::string_view text) {
    const auto parsed = mdns::parse_categories(text);
    if (!parsed) return;
    FUZZ_REQUIRE(!parsed->empty(), "empty category list accepted: " + printable(text));
    for (int c : *parsed)
        FUZZ_REQUIRE(c > 0, "category " + std::to_string(c) + " accepted from " + printable(text));
    const std::string formatted = mdns::format_categories(*parsed);
    const auto again = mdns::parse_categories(formatted);
    FUZZ_REQUIRE(again && *again == *parsed, "format/parse of categories differs: " + formatted);
}

void check_cut(std::string_view text, std::size_t max_bytes) {
    const auto cut = mdns::cut_utf8(text, max_bytes);
    FUZZ_REQUIRE(cut.size() <= max_bytes && text.substr(0, cut.size()) == cut, "cut_utf8 is not a prefix");
    if (mdns::is_utf8(text)) FUZZ_REQUIRE(mdns::is_utf8(cut), "cut_utf8 split a UTF-8 sequence");
}

void check_txt(const std::vector<std::string>& txt) {
    const auto result = mdns::parse_txt(txt);
    if (!result.entry) {
        FUZZ_REQUIRE(!result.error.empty(), "refused without a reason");
        return;
    }
    const auto& e = *result.entry;
    FUZZ_REQUIRE(ship::is_canonical_ski(e.ski), "accepted SKI is not canonical: " + printable(e.ski));
    FUZZ_REQUIRE(!e.ship_id.empty() && !e.path.empty(), "empty id or path accepted");
    for (int c : e.categories)
        FUZZ_REQUIRE(c > 0, "category " + std::to_string(c) + " accepted");

    // What we would announce for such a peer reads back as the same peer.
    mdns::LocalService s;
    s.ship_id = e.ship_id;
    s.ski = e.ski;
    s.brand = e.brand;
    s.model = e.model;
    s.type = e.type;
    s.serial = e.serial;
    if (!e.categories.empty()) s.categories = e.categories;
    s.auto_register = e.auto_register;
    if (mdns::check(s)) return; // e.g. an id with '=' or over 63 bytes: we would not announce it
    const auto encoded = mdns::encode_txt(s);
    const auto back = mdns::parse_txt(encoded);
    FUZZ_REQUIRE(back.entry, "our own TXT is refused: " + back.error);
    const auto& b = *back.entry;
    FUZZ_REQUIRE(b.ship_id == s.ship_id && b.ski == s.ski && b.auto_register == s.auto_register &&
                     b.categories == s.categories && b.path == mdns::ship_path,
                 "encode_txt/parse_txt changed the peer " + printable(s.ship_id));
    for (const auto& text : {b.brand, b.model, b.type, b.serial}) {
        FUZZ_REQUIRE(text.size() <= mdns::max_text_bytes && mdns::is_utf8(text) &&
                         text.find_first_of("=;") == std::string::npos,
                     "announced free text breaks the TXT rules: " + printable(text));
    }
    (void)mdns::installation_qr_text(s);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> txt;
    std::size_t start = 0;
    while (start <= text.size()) {
        const auto nl = text.find('\n', start);
        const auto end = nl == std::string_view::npos ? text.size() : nl;
        txt.emplace_back(text.substr(start, end - start));
        start = end + 1;
    }
    check_txt(txt);
    for (const auto& item : txt) {
        check_categories(item);
        const auto eq = item.find('=');
        if (eq != std::string::npos) check_categories(std::string_view(item).substr(eq + 1));
    }
    check_cut(text, size / 2);
    check_cut(text, mdns::max_text_bytes);
    return 0;
}
