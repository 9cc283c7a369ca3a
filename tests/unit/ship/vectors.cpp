#include "vectors.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <rapidjson/document.h>

namespace ship::test {

namespace {

rapidjson::Document load(const std::string& file) {
    const char* dir = std::getenv("SHIPD_TEST_DATA");
    if (!dir) throw std::runtime_error("SHIPD_TEST_DATA is not set (run the tests through meson test)");
    const std::string path = std::string(dir) + "/" + file;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream text;
    text << in.rdbuf();
    rapidjson::Document doc;
    doc.Parse(text.str().c_str());
    if (doc.HasParseError() || !doc.IsObject()) throw std::runtime_error(path + " is not a JSON object");
    return doc;
}

std::string str(const rapidjson::Value& v, const char* key) {
    if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString())
        throw std::runtime_error(std::string("vector member '") + key + "' missing");
    return std::string(v[key].GetString(), v[key].GetStringLength());
}

Bytes from_hex(const std::string& hex) {
    Bytes out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    return out;
}

} // namespace

std::vector<EebusPair> spine_payload_vectors() {
    const auto doc = load("eebus-json.json");
    std::vector<EebusPair> out;
    for (const auto& v : doc["spine_payload"].GetArray()) {
        EebusPair p{str(v, "name"), str(v, "eebus"), str(v, "plain")};
        if (v.HasMember("eebus_bytes_hex_suffix")) {
            for (auto b : from_hex(str(v, "eebus_bytes_hex_suffix")))
                p.eebus.push_back(static_cast<char>(b));
        }
        out.push_back(std::move(p));
    }
    return out;
}

std::vector<DataVector> data_message_vectors() {
    const auto doc = load("eebus-json.json");
    std::vector<DataVector> out;
    for (const auto& v : doc["ship_data_message"].GetArray())
        out.push_back({str(v, "name"), str(v, "spine_plain"), v["type_byte"].GetInt(), str(v, "eebus")});
    return out;
}

std::vector<MessageVector> ship_message_vectors() {
    const auto doc = load("ship-messages.json");
    std::vector<MessageVector> out;
    for (const auto& v : doc["messages"].GetArray()) {
        MessageVector m{str(v, "name"), {}};
        if (v.HasMember("hex")) {
            m.bytes = from_hex(str(v, "hex"));
        } else {
            m.bytes = make_frame(static_cast<MessageType>(v["type"].GetInt()), str(v, "json"));
        }
        out.push_back(std::move(m));
    }
    return out;
}

Bytes message_vector(const std::string& name) {
    static const std::vector<MessageVector> all = ship_message_vectors();
    for (const auto& m : all)
        if (m.name == name) return m.bytes;
    throw std::runtime_error("no vector named " + name);
}

} // namespace ship::test
