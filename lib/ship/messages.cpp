#include "ship/messages.hpp"

#include <array>
#include <utility>

#include "ship/eebus_json.hpp"

namespace ship::msg {

namespace {

using rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

template <typename Enum, std::size_t N>
using Names = std::array<std::pair<Enum, std::string_view>, N>;

constexpr Names<HelloPhase, 3> hello_phases{
    {{HelloPhase::pending, "pending"}, {HelloPhase::ready, "ready"}, {HelloPhase::aborted, "aborted"}}};
constexpr Names<HandshakeType, 2> handshake_types{
    {{HandshakeType::announce_max, "announceMax"}, {HandshakeType::select, "select"}}};
constexpr Names<PinState, 4> pin_states{{{PinState::required, "required"},
                                         {PinState::optional, "optional"},
                                         {PinState::pin_ok, "pinOk"},
                                         {PinState::none, "none"}}};
constexpr Names<PinInputPermission, 2> input_permissions{
    {{PinInputPermission::busy, "busy"}, {PinInputPermission::ok, "ok"}}};
constexpr Names<ClosePhase, 2> close_phases{
    {{ClosePhase::announce, "announce"}, {ClosePhase::confirm, "confirm"}}};

template <typename Enum, std::size_t N>
std::string_view text_of(const Names<Enum, N>& names, Enum value) {
    for (const auto& [e, text] : names)
        if (e == value) return text;
    return {};
}

template <typename Enum, std::size_t N>
std::optional<Enum> enum_of(const Names<Enum, N>& names, std::string_view text) {
    for (const auto& [e, t] : names)
        if (t == text) return e;
    return std::nullopt;
}

bool is_key(const Value& name, std::string_view key) {
    return std::string_view(name.GetString(), name.GetStringLength()) == key;
}

// Reads the members of one message body and keeps the first problem found. The body is read as parsed, in
// EEBUS form (an array of single-key objects) or plain (an object), exactly as its plain form would read:
// nothing is copied, and unknown members are never looked at. Every value read is checked
// (json::value_problem), which is what makes the document's representability walk unneeded here.
class Body {
public:
    // `value` is object-like (json::is_object_like).
    Body(std::string_view message, const Value& value)
        : message_(message)
        , value_(value) {}

    // The first member named `key`, as the plain form's lookup finds it.
    const Value* find(std::string_view key) const {
        if (value_.IsObject()) {
            for (const auto& m : value_.GetObject())
                if (is_key(m.name, key)) return &m.value;
            return nullptr;
        }
        for (const auto& e : value_.GetArray()) {
            const auto& m = *e.MemberBegin();
            if (is_key(m.name, key)) return &m.value;
        }
        return nullptr;
    }

    std::optional<std::string> string(std::string_view key, bool required) {
        const Value* v = present(key, required);
        if (!v) return std::nullopt;
        if (!v->IsString()) return fail(key, "must be a string");
        return std::string(v->GetString(), v->GetStringLength());
    }

    std::optional<std::uint64_t> unsigned_int(std::string_view key, bool required) {
        const Value* v = present(key, required);
        if (!v) return std::nullopt;
        if (!v->IsUint64()) return fail(key, "must be a non-negative integer");
        return v->GetUint64();
    }

    std::optional<bool> boolean(std::string_view key, bool required) {
        const Value* v = present(key, required);
        if (!v) return std::nullopt;
        if (!v->IsBool()) return fail(key, "must be true or false");
        return v->GetBool();
    }

    template <typename Enum, std::size_t N>
    std::optional<Enum> enumeration(std::string_view key, const Names<Enum, N>& names, bool required) {
        const auto text = string(key, required);
        if (!text) return std::nullopt;
        if (auto e = enum_of(names, *text)) return e;
        return fail(key, "has the unknown value '" + *text + "'");
    }

    // An object member (in either form), or nullptr (and an error if it is present but not an object).
    const Value* object(std::string_view key, bool required) {
        const Value* v = present(key, required);
        if (v && !json::is_object_like(*v)) {
            fail(key, "must be an object");
            return nullptr;
        }
        return v;
    }

    std::nullopt_t fail(std::string_view key, std::string_view what) {
        if (!error) error = std::string(message_) + ": '" + std::string(key) + "' " + std::string(what);
        return std::nullopt;
    }
    // A value that json::parse would have refused the whole text for, in its words.
    bool refused(const Value& v) {
        auto why = json::value_problem(v);
        if (why && !error) error = std::move(why->reason);
        return why.has_value();
    }

    std::optional<std::string> error;

private:
    const Value* present(std::string_view key, bool required) {
        const Value* v = find(key);
        if (!v && required) fail(key, "is missing");
        if (v && refused(*v)) return nullptr;
        return v;
    }

    std::string_view message_;
    const Value& value_;
};

template <typename T>
std::variant<Message, DecodeError> done(Body& body, T message) {
    if (body.error) return DecodeError{*body.error};
    return Message{std::move(message)};
}

std::variant<Message, DecodeError> decode_hello(Body& b) {
    ConnectionHello m;
    if (auto phase = b.enumeration("phase", hello_phases, true)) m.phase = *phase;
    m.waiting = b.unsigned_int("waiting", false);
    m.prolongation_request = b.boolean("prolongationRequest", false);
    return done(b, m);
}

std::variant<Message, DecodeError> decode_protocol_handshake(Body& b) {
    MessageProtocolHandshake m;
    if (auto type = b.enumeration("handshakeType", handshake_types, true)) m.type = *type;
    if (const Value* version = b.object("version", true)) {
        Body v("messageProtocolHandshake.version", *version);
        m.version.major = v.unsigned_int("major", true).value_or(0);
        m.version.minor = v.unsigned_int("minor", true).value_or(0);
        if (v.error && !b.error) b.error = v.error;
    }
    m.formats.clear();
    const Value* formats = b.find("formats");
    if (!formats) {
        b.fail("formats", "is missing");
        return done(b, m);
    }
    // Wrapped {"formats":{"format":[...]}} per schema; one stack sends the flat list ["JSON-UTF8"].
    const Value* list = formats;
    if (json::is_object_like(*formats)) {
        Body f("messageProtocolHandshake.formats", *formats);
        list = f.find("format");
        if (!list) {
            b.fail("formats", "has no 'format' list");
            return done(b, m);
        }
    }
    if (b.refused(*list)) return done(b, m);
    if (list->IsString()) { // a single format where a list of one belongs
        m.formats.emplace_back(list->GetString(), list->GetStringLength());
    } else if (list->IsArray() && !json::is_object_like(*list)) {
        for (const auto& f : list->GetArray()) {
            if (b.refused(f)) return done(b, m);
            if (!f.IsString()) {
                b.fail("formats", "must list strings");
                return done(b, m);
            }
            m.formats.emplace_back(f.GetString(), f.GetStringLength());
        }
    } else {
        b.fail("formats", "must be a list of formats");
    }
    return done(b, m);
}

// messageProtocolHandshakeError and connectionPinError carry just an error number.
template <typename ErrorMessage>
std::variant<Message, DecodeError> decode_error_number(Body& b) {
    ErrorMessage m;
    m.error = b.unsigned_int("error", true).value_or(0);
    return done(b, m);
}

std::variant<Message, DecodeError> decode_pin_state(Body& b) {
    ConnectionPinState m;
    if (auto state = b.enumeration("pinState", pin_states, true)) m.pin_state = *state;
    m.input_permission = b.enumeration("inputPermission", input_permissions, false);
    return done(b, m);
}

std::variant<Message, DecodeError> decode_pin_input(Body& b) {
    ConnectionPinInput m;
    m.pin = b.string("pin", true).value_or("");
    return done(b, m);
}

std::variant<Message, DecodeError> decode_access_methods(Body& b) {
    AccessMethods m;
    m.id = b.string("id", true).value_or("");
    m.dns_sd_mdns = b.find("dnsSd_mDns") != nullptr;
    if (const Value* dns = b.object("dns", false)) {
        Body d("accessMethods.dns", *dns);
        m.dns_uri = d.string("uri", false);
        if (d.error && !b.error) b.error = d.error;
    }
    return done(b, m);
}

std::variant<Message, DecodeError> decode_data(Body& b) {
    Data m;
    if (const Value* header = b.object("header", true)) {
        Body h("data.header", *header);
        m.protocol_id = h.string("protocolId", true).value_or("");
        if (h.error && !b.error) b.error = h.error;
    }
    // What applications get is checked while it is written (json::write_plain), in one walk.
    const auto plain = [&b](const Value& eebus) -> std::optional<std::string> {
        auto text = json::write_plain(eebus);
        if (auto* err = std::get_if<json::CodecError>(&text)) {
            if (!b.error) b.error = std::move(err->reason);
            return std::nullopt;
        }
        return std::move(std::get<std::string>(text));
    };
    if (const Value* payload = b.find("payload")) {
        if (auto text = plain(*payload)) m.payload = std::move(*text);
    } else {
        b.fail("payload", "is missing");
    }
    if (const Value* extension = b.find("extension")) m.extension = plain(*extension);
    return done(b, m);
}

std::variant<Message, DecodeError> decode_close(Body& b) {
    ConnectionClose m;
    if (auto phase = b.enumeration("phase", close_phases, true)) m.phase = *phase;
    m.max_time = b.unsigned_int("maxTime", false);
    m.reason = b.string("reason", false);
    return done(b, m);
}

struct Kind {
    std::string_view name;
    MessageType frame_type;
    std::variant<Message, DecodeError> (*decode)(Body&);
};
constexpr std::array<Kind, 11> kinds{{
    {"connectionHello", MessageType::control, decode_hello},
    {"messageProtocolHandshake", MessageType::control, decode_protocol_handshake},
    {"messageProtocolHandshakeError", MessageType::control,
     decode_error_number<MessageProtocolHandshakeError>},
    {"error", MessageType::control,
     decode_error_number<MessageProtocolHandshakeError>}, // legacy envelope of the handshake error
    {"connectionPinState", MessageType::control, decode_pin_state},
    {"connectionPinInput", MessageType::control, decode_pin_input},
    {"connectionPinError", MessageType::control, decode_error_number<ConnectionPinError>},
    {"accessMethodsRequest", MessageType::control, nullptr},
    {"accessMethods", MessageType::control, decode_access_methods},
    {"data", MessageType::data, decode_data},
    {"connectionClose", MessageType::end, decode_close},
}};

std::string_view frame_type_name(MessageType type) {
    switch (type) {
    case MessageType::init:
        return "init";
    case MessageType::control:
        return "control";
    case MessageType::data:
        return "data";
    case MessageType::end:
        return "end";
    }
    return "unknown";
}

// At most `limit` bytes of `s`, cut before a UTF-8 sequence rather than inside it (error texts stay UTF-8).
std::string cut_utf8(std::string_view s, std::size_t limit) {
    if (s.size() <= limit) return std::string(s);
    std::size_t end = limit;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80)
        --end;
    return std::string(s.substr(0, end));
}

Value string_value(std::string_view s, Allocator& a) {
    return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}

// Builds {root: body} in plain form, converts it to EEBUS form and frames it.
class Builder {
public:
    Value& body() { return body_; }
    Allocator& alloc() { return doc_.GetAllocator(); }

    void add(const char* key, std::string_view text) {
        body_.AddMember(rapidjson::StringRef(key), string_value(text, alloc()), alloc());
    }
    void add(const char* key, std::uint64_t number) {
        body_.AddMember(rapidjson::StringRef(key), Value(number), alloc());
    }
    void add(const char* key, bool flag) { body_.AddMember(rapidjson::StringRef(key), Value(flag), alloc()); }
    void add(const char* key, Value&& value) { body_.AddMember(rapidjson::StringRef(key), value, alloc()); }

    Bytes frame(MessageType type, const char* root) {
        Value message(rapidjson::kObjectType);
        message.AddMember(rapidjson::StringRef(root), body_, alloc());
        return make_frame(type, json::write(json::to_eebus_root(message, alloc())));
    }

private:
    rapidjson::Document doc_;
    Value body_{rapidjson::kObjectType};
};

} // namespace

std::string_view name(const Message& message) {
    struct Visitor {
        std::string_view operator()(const ConnectionHello&) const { return "connectionHello"; }
        std::string_view operator()(const MessageProtocolHandshake&) const {
            return "messageProtocolHandshake";
        }
        std::string_view operator()(const MessageProtocolHandshakeError&) const {
            return "messageProtocolHandshakeError";
        }
        std::string_view operator()(const ConnectionPinState&) const { return "connectionPinState"; }
        std::string_view operator()(const ConnectionPinInput&) const { return "connectionPinInput"; }
        std::string_view operator()(const ConnectionPinError&) const { return "connectionPinError"; }
        std::string_view operator()(const AccessMethodsRequest&) const { return "accessMethodsRequest"; }
        std::string_view operator()(const AccessMethods&) const { return "accessMethods"; }
        std::string_view operator()(const Data&) const { return "data"; }
        std::string_view operator()(const ConnectionClose&) const { return "connectionClose"; }
    };
    return std::visit(Visitor{}, message);
}

// One RapidJSON parse and no walk over the document: the readers check each value they take (Body), and a
// data message's payload is checked while its plain text is written.
std::variant<Message, DecodeError> decode(const Frame& frame) {
    if (frame.type == MessageType::init)
        return DecodeError{"a CMI (init) message where a SHIP message belongs"};
    // A control message's DOM fits here; a bigger one (data) continues in heap chunks. Saves the pool's
    // first 64 KiB malloc/free per message.
    char first_chunk[2048];
    rapidjson::MemoryPoolAllocator<> pool(first_chunk, sizeof first_chunk);
    rapidjson::Document doc(&pool);
    if (auto err = json::parse_unchecked(frame.payload, doc)) return DecodeError{err->reason};
    if (!doc.IsObject()) return DecodeError{"the message is not a JSON object"};
    if (doc.MemberCount() != 1)
        return DecodeError{"the message has " + std::to_string(doc.MemberCount()) +
                           " root members, expected 1"};

    const Value& root_name = doc.MemberBegin()->name;
    if (auto err = json::value_problem(root_name)) return DecodeError{err->reason};
    const std::string_view root(root_name.GetString(), root_name.GetStringLength());
    const Kind* kind = nullptr;
    for (const auto& k : kinds)
        if (k.name == root) kind = &k;
    if (!kind) return DecodeError{"unknown message '" + cut_utf8(root, 64) + "'"};
    if (kind->frame_type != frame.type)
        return DecodeError{std::string(root) + " in a " + std::string(frame_type_name(frame.type)) +
                           " frame, expected " + std::string(frame_type_name(kind->frame_type))};

    // The legacy handshake error {"error":N} has no root tag: the root object is its body.
    const Value& body = root == "error" ? static_cast<const Value&>(doc) : doc.MemberBegin()->value;
    if (!json::is_object_like(body)) return DecodeError{std::string(root) + " must be an object"};
    if (!kind->decode) return Message{AccessMethodsRequest{}};
    Body reader(root, body);
    return kind->decode(reader);
}

Bytes encode(const ConnectionHello& m) {
    Builder b;
    b.add("phase", text_of(hello_phases, m.phase));
    if (m.waiting) b.add("waiting", *m.waiting);
    if (m.prolongation_request) b.add("prolongationRequest", *m.prolongation_request);
    return b.frame(MessageType::control, "connectionHello");
}

Bytes encode(const MessageProtocolHandshake& m) {
    Builder b;
    b.add("handshakeType", text_of(handshake_types, m.type));
    Value version(rapidjson::kObjectType);
    version.AddMember("major", Value(m.version.major), b.alloc());
    version.AddMember("minor", Value(m.version.minor), b.alloc());
    b.add("version", std::move(version));
    Value list(rapidjson::kArrayType);
    for (const auto& f : m.formats)
        list.PushBack(string_value(f, b.alloc()), b.alloc());
    Value formats(rapidjson::kObjectType);
    formats.AddMember("format", list, b.alloc());
    b.add("formats", std::move(formats));
    return b.frame(MessageType::control, "messageProtocolHandshake");
}

Bytes encode(const MessageProtocolHandshakeError& m) {
    Builder b;
    b.add("error", m.error);
    return b.frame(MessageType::control, "messageProtocolHandshakeError");
}

Bytes encode(const ConnectionPinState& m) {
    Builder b;
    b.add("pinState", text_of(pin_states, m.pin_state));
    if (m.input_permission) b.add("inputPermission", text_of(input_permissions, *m.input_permission));
    return b.frame(MessageType::control, "connectionPinState");
}

Bytes encode(const ConnectionPinInput& m) {
    Builder b;
    b.add("pin", m.pin);
    return b.frame(MessageType::control, "connectionPinInput");
}

Bytes encode(const ConnectionPinError& m) {
    Builder b;
    b.add("error", m.error);
    return b.frame(MessageType::control, "connectionPinError");
}

Bytes encode(const AccessMethodsRequest&) {
    Builder b;
    return b.frame(MessageType::control, "accessMethodsRequest");
}

Bytes encode(const AccessMethods& m) {
    Builder b;
    b.add("id", m.id);
    if (m.dns_sd_mdns) b.add("dnsSd_mDns", Value(rapidjson::kObjectType));
    if (m.dns_uri) {
        Value dns(rapidjson::kObjectType);
        dns.AddMember("uri", string_value(*m.dns_uri, b.alloc()), b.alloc());
        b.add("dns", std::move(dns));
    }
    return b.frame(MessageType::control, "accessMethods");
}

Bytes encode(const ConnectionClose& m) {
    Builder b;
    b.add("phase", text_of(close_phases, m.phase));
    if (m.max_time) b.add("maxTime", *m.max_time);
    if (m.reason) b.add("reason", *m.reason);
    return b.frame(MessageType::end, "connectionClose");
}

namespace {

// The data message around a parsed plain payload (an object); the payload's allocator holds the result.
Bytes data_message(rapidjson::Document& payload) {
    auto& a = payload.GetAllocator();

    // The payload keeps its own braces ({"datagram":[...]}), as the reference implementation sends it.
    Value header(rapidjson::kObjectType);
    header.AddMember("protocolId", string_value(protocol_id_spine, a), a);
    Value header_entry(rapidjson::kObjectType);
    header_entry.AddMember("header", json::to_eebus(header, a), a);
    Value payload_entry(rapidjson::kObjectType);
    payload_entry.AddMember("payload", json::to_eebus_root(payload, a), a);
    Value body(rapidjson::kArrayType);
    body.PushBack(header_entry, a);
    body.PushBack(payload_entry, a);
    Value message(rapidjson::kObjectType);
    message.AddMember("data", body, a);
    return make_frame(MessageType::data, json::write(message));
}

// Why `doc` is not {"datagram":{"header":{...},"payload":{...}}}, or nullopt.
std::optional<std::string> datagram_problem(const rapidjson::Document& doc) {
    if (!doc.IsObject()) return "the root is not an object";
    const auto datagram = doc.FindMember("datagram");
    if (datagram == doc.MemberEnd()) return "the root has no \"datagram\"";
    if (doc.MemberCount() != 1) return "the root has members besides \"datagram\"";
    if (!datagram->value.IsObject()) return "\"datagram\" is not an object";
    for (const char* part : {"header", "payload"}) {
        const auto member = datagram->value.FindMember(part);
        if (member == datagram->value.MemberEnd()) return "\"datagram\" has no \"" + std::string(part) + "\"";
        if (!member->value.IsObject()) return "\"" + std::string(part) + "\" is not an object";
    }
    return std::nullopt;
}

} // namespace

std::variant<Bytes, EncodeError> encode_data(std::string_view plain_payload) {
    rapidjson::Document payload;
    if (auto err = json::parse(plain_payload, payload)) return EncodeError{err->reason};
    if (!payload.IsObject()) return EncodeError{"the data payload must be a JSON object"};
    return data_message(payload);
}

std::variant<Bytes, EncodeError> encode_spine_datagram(std::string_view plain_datagram) {
    rapidjson::Document doc;
    if (auto err = json::parse(plain_datagram, doc)) return EncodeError{err->reason};
    if (auto why = datagram_problem(doc))
        return EncodeError{"a SPINE message is {\"datagram\":{\"header\":{...},\"payload\":{...}}}: " + *why};
    return data_message(doc);
}

} // namespace ship::msg
