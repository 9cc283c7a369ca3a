#include "mdns/txt.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <stdexcept>

#include "ship/ski.hpp"

namespace ship::mdns {

namespace {

bool is_continuation(unsigned char c) {
    return (c & 0xC0) == 0x80;
}

// Free text as announced: no '=' (breaks key=value readers), no ';' (breaks the QR text), at most 32 bytes.
std::string announced_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text)
        if (c != '=' && c != ';') out.push_back(c);
    return std::string(cut_utf8(out, max_text_bytes));
}

// The announced form of a checked service: canonical SKI, cut and cleaned free text.
LocalService announced(const LocalService& service) {
    if (auto reason = check(service)) throw std::invalid_argument(*reason);
    LocalService out = service;
    out.ski = *ship::normalize_ski(service.ski);
    out.brand = announced_text(service.brand);
    out.model = announced_text(service.model);
    out.type = announced_text(service.type);
    out.serial = announced_text(service.serial);
    return out;
}

std::string lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
    return out;
}

} // namespace

bool is_utf8(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        std::size_t length = 0;
        unsigned char low = 0x80, high = 0xBF; // allowed range of the first continuation byte
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            length = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            length = 3;
            if (c == 0xE0) low = 0xA0;  // overlong
            if (c == 0xED) high = 0x9F; // UTF-16 surrogates
        } else if (c >= 0xF0 && c <= 0xF4) {
            length = 4;
            if (c == 0xF0) low = 0x90;  // overlong
            if (c == 0xF4) high = 0x8F; // beyond U+10FFFF
        } else {
            return false;
        }
        if (text.size() - i < length) return false;
        const auto first = static_cast<unsigned char>(text[i + 1]);
        if (first < low || first > high) return false;
        for (std::size_t k = 2; k < length; ++k)
            if (!is_continuation(static_cast<unsigned char>(text[i + k]))) return false;
        i += length;
    }
    return true;
}

std::string_view cut_utf8(std::string_view text, std::size_t max_bytes) {
    if (text.size() <= max_bytes) return text;
    std::size_t cut = max_bytes;
    while (cut > 0 && is_continuation(static_cast<unsigned char>(text[cut])))
        --cut;
    return text.substr(0, cut);
}

std::string format_categories(const std::vector<int>& categories) {
    std::string out;
    for (int category : categories) {
        if (!out.empty()) out.push_back(',');
        out += std::to_string(category);
    }
    return out;
}

std::optional<std::vector<int>> parse_categories(std::string_view text) {
    std::vector<int> out;
    while (true) {
        const auto comma = text.find(',');
        auto item = text.substr(0, comma);
        while (!item.empty() && item.front() == ' ')
            item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ')
            item.remove_suffix(1);
        int value = 0;
        const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
        if (item.empty() || ec != std::errc{} || end != item.data() + item.size() || value <= 0)
            return std::nullopt;
        out.push_back(value);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return out;
}

std::optional<std::string> check(const LocalService& service) {
    if (!ship::normalize_ski(service.ski)) return "SKI '" + service.ski + "' is not 40 hex digits";
    const auto& id = service.ship_id;
    if (id.empty()) return std::string("SHIP ID is empty");
    if (id.size() > max_ship_id_bytes)
        return "SHIP ID '" + id + "' has " + std::to_string(id.size()) + " bytes, at most 63 fit the TXT id";
    if (id.find_first_of("=;") != std::string::npos)
        return "SHIP ID '" + id + "' holds '=' or ';', which peers would read as a separator";
    if (!is_utf8(id)) return std::string("SHIP ID is not UTF-8");
    const std::pair<const char*, const std::string*> texts[] = {{"brand", &service.brand},
                                                                {"model", &service.model},
                                                                {"type", &service.type},
                                                                {"serial", &service.serial}};
    for (const auto& [name, text] : texts)
        if (!is_utf8(*text)) return std::string(name) + " is not UTF-8";
    if (service.categories.empty()) return std::string("no device category (cat) given; SHIP needs one");
    for (int category : service.categories)
        if (category <= 0) return "device category " + std::to_string(category) + " is not a positive number";
    return std::nullopt;
}

std::vector<std::string> encode_txt(const LocalService& service) {
    const LocalService s = announced(service);
    std::vector<std::string> txt = {
        "txtvers=1",        "path=" + std::string(ship_path),
        "id=" + s.ship_id,  "ski=" + s.ski,
        "brand=" + s.brand, "model=" + s.model,
        "type=" + s.type,   std::string("register=") + (s.auto_register ? "true" : "false"),
    };
    if (!s.serial.empty()) txt.push_back("serial=" + s.serial);
    txt.push_back("cat=" + format_categories(s.categories));
    return txt;
}

std::string installation_qr_text(const LocalService& service) {
    const LocalService s = announced(service);
    std::string out = "SHIP;SKI:" + s.ski + ";ID:" + s.ship_id + ";";
    const std::pair<const char*, const std::string*> optional_fields[] = {
        {"BRAND", &s.brand}, {"TYPE", &s.type}, {"MODEL", &s.model}, {"SERIAL", &s.serial}};
    for (const auto& [name, value] : optional_fields)
        if (!value->empty()) out += std::string(name) + ":" + *value + ";";
    out += "CAT:" + format_categories(s.categories) + ";ENDSHIP;";
    return out;
}

TxtParseResult parse_txt(const std::vector<std::string>& txt) {
    std::map<std::string, std::string, std::less<>> values;
    for (const auto& item : txt) {
        const auto equals = item.find('=');
        if (equals == 0 || equals == std::string::npos)
            continue; // no key, or a boolean attribute SHIP never uses
        values.emplace(lower(std::string_view(item).substr(0, equals)), item.substr(equals + 1));
    }
    const auto fail = [](std::string reason) { return TxtParseResult{std::nullopt, std::move(reason)}; };
    const auto has = [&](std::string_view key) { return values.find(key) != values.end(); };
    // An absent key reads as empty: the mandatory ones are checked with has() first.
    const auto value = [&](std::string_view key) -> const std::string& {
        static const std::string absent;
        const auto it = values.find(key);
        return it == values.end() ? absent : it->second;
    };
    for (const char* key : {"txtvers", "id", "path", "ski", "register"})
        if (!has(key)) return fail(std::string("TXT lacks the mandatory key '") + key + "'");
    if (value("txtvers") != "1") return fail("txtvers=" + value("txtvers") + " is not supported (want 1)");

    ServiceEntry entry;
    entry.ship_id = value("id");
    if (entry.ship_id.empty()) return fail("TXT id (the SHIP ID) is empty");
    entry.path = value("path");
    if (entry.path.empty()) return fail("TXT path is empty");
    auto ski = ship::normalize_ski(value("ski"));
    if (!ski) return fail("TXT ski '" + value("ski") + "' is not 40 hex digits");
    entry.ski = std::move(*ski);
    const auto reg = lower(value("register"));
    if (reg != "true" && reg != "false")
        return fail("TXT register='" + value("register") + "' is not true or false");
    entry.auto_register = reg == "true";

    entry.brand = value("brand");
    entry.model = value("model");
    entry.type = value("type");
    entry.serial = value("serial");
    if (has("cat")) entry.categories = parse_categories(value("cat")).value_or(std::vector<int>{});
    return {std::move(entry), {}};
}

} // namespace ship::mdns
