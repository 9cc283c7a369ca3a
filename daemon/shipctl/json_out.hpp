// One JSON document on stdout, compact, newline-terminated (`shipctl peers --json | jq` and grep both work):
// what every `--json` command prints, built field by field with RapidJSON's writer.
#pragma once

#include <cstdint>
#include <iostream>
#include <string_view>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace ship::ctl {

class JsonOut {
public:
    JsonOut()
        : w(buffer) {}
    void key(std::string_view k) { w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size())); }
    void str(std::string_view v) { w.String(v.data(), static_cast<rapidjson::SizeType>(v.size())); }
    void field(std::string_view k, std::string_view v) { key(k), str(v); }
    void field(std::string_view k, const char* v) { key(k), str(v); }
    void field(std::string_view k, bool v) { key(k), w.Bool(v); }
    void field(std::string_view k, std::uint64_t v) { key(k), w.Uint64(v); }
    void field(std::string_view k, unsigned v) { key(k), w.Uint(v); }
    void print() { std::cout << buffer.GetString() << '\n' << std::flush; }
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w;
};

} // namespace ship::ctl
