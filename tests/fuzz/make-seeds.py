#!/usr/bin/env python3
"""Writes the seed corpora tests/fuzz/corpus/<target>/ from the vectors (tests/data/*.json, the ship-go trace,
daemon/shipd.conf.example) and hand-written cases. The output is committed; run again after changing a
vector or the input layout of fuzz_connection.cpp:  python3 tests/fuzz/make-seeds.py"""

import json
import pathlib
import re
import shutil

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = ROOT / "tests" / "data"


def write(target, seeds):
    out = HERE / "corpus" / target
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    names = set()
    for name, blob in seeds:
        if isinstance(blob, str):
            blob = blob.encode()
        assert len(blob) < 4096, name
        assert name not in names, name
        names.add(name)
        (out / name).write_bytes(blob)
    print(f"{target}: {len(seeds)} seeds")


def frame(type_byte, text):
    return bytes([type_byte]) + text.encode()


eebus_vectors = json.loads((DATA / "eebus-json.json").read_text())
ship_vectors = json.loads((DATA / "ship-messages.json").read_text())
trace = (DATA / "shipgo-handshake-trace.txt").read_text()

# ---- eebus_json: EEBUS and plain texts
seeds = []
for v in eebus_vectors["spine_payload"]:
    eebus = v["eebus"].encode() + bytes.fromhex(v.get("eebus_bytes_hex_suffix", ""))
    seeds += [(v["name"] + ".eebus", eebus), (v["name"] + ".plain", v["plain"])]
for v in eebus_vectors["ship_data_message"]:
    seeds += [(v["name"] + ".eebus", v["eebus"]), (v["name"] + ".plain", v["spine_plain"])]
for m in ship_vectors["messages"]:
    if "json" in m:
        seeds.append((m["name"] + ".eebus", m["json"]))
hand = {
    "empty-array": "[]",
    "empty-object": "{}",
    "root-empty-array": '{"accessMethodsRequest":[]}',
    "array-of-objects": '{"cmd":[{"a":1},{"b":{"c":[1,2]}}]}',
    "array-of-arrays": '{"cmd":[[{"a":1}],[{"b":[{"c":[1,2]}]}]]}',
    "scalars": '{"s":{"x":"y","n":-1.5,"t":true,"f":false,"z":null,"big":18446744073709551615,"e":1e300}}',
    "strings": '{"m":{"s":"[{},{}] \\"q\\" \\u00e4 \\u20ac \\u0000 \\ud83d\\ude00"}}',
    "whitespace": ' { "a" : [ { "b" : 1 } , { "c" : [ ] } ] } ',
    "duplicate-keys": '{"a":1,"a":[{"x":1},{"x":2}]}',
    "mixed-array": '{"a":[{"x":1},2,{"y":3,"z":4}]}',
    "deep-64": "[" * 64 + "]" * 64,
    "deep-65": "{\"a\":" * 65 + "1" + "}" * 65,
    "bracket-in-string": '{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',
}
seeds += [(k + ".json", v) for k, v in hand.items()]
write("eebus_json", seeds)

# ---- frame_messages: whole WebSocket messages
seeds = []
for m in ship_vectors["messages"]:
    blob = bytes.fromhex(m["hex"]) if "hex" in m else frame(m["type"], m["json"])
    seeds.append((m["name"], blob))
for v in eebus_vectors["ship_data_message"]:
    seeds.append((v["name"], frame(v["type_byte"], v["eebus"])))
for i, line in enumerate(l for l in trace.splitlines() if "+ JSON" in l):
    match = re.search(r"\[(0[0-3]) \+ JSON.*?\]\s+(\{.*\})\s*$", line)
    if match:
        seeds.append((f"trace-{i:02d}", frame(int(match.group(1), 16), match.group(2))))
hand = [
    ("hello-trailing-nul", frame(1, '{"connectionHello":[{"phase":"ready"},{"waiting":60000}]}') + b"\0"),
    ("hello-wrong-frame-type", frame(3, '{"connectionHello":[{"phase":"ready"}]}')),
    ("handshake-flat-formats",
     frame(1, '{"messageProtocolHandshake":[{"handshakeType":"select"},{"version":[{"major":1},{"minor":0}]},'
              '{"formats":["JSON-UTF8"]}]}')),
    ("handshake-single-format",
     frame(1, '{"messageProtocolHandshake":[{"handshakeType":"select"},{"version":[{"major":1},{"minor":0}]},'
              '{"formats":[{"format":"JSON-UTF8"}]}]}')),
    ("pin-optional", frame(1, '{"connectionPinState":[{"pinState":"optional"},{"inputPermission":"busy"}]}')),
    ("pin-input", frame(1, '{"connectionPinInput":[{"pin":"1234"}]}')),
    ("pin-error", frame(1, '{"connectionPinError":[{"error":1}]}')),
    ("access-methods-full",
     frame(1, '{"accessMethods":[{"id":"x"},{"dnsSd_mDns":[]},{"dns":[{"uri":"wss://h:4711/ship/"}]}]}')),
    ("data-extension",
     frame(2, '{"data":[{"header":[{"protocolId":"ee1.0"}]},{"payload":{"datagram":[]}},'
              '{"extension":[{"extensionId":"x"},{"string":"y"}]}]}')),
    ("data-plain-payload", frame(2, '{"data":{"header":{"protocolId":"ee1.0"},"payload":{"datagram":{}}}}')),
    ("not-utf8", b"\x01{\"connectionHello\":[{\"phase\":\"\xff\"}]}"),
    ("type-4", frame(4, "{}")),
    ("two-roots", frame(1, '{"connectionHello":[],"accessMethodsRequest":[]}')),
]
seeds += hand
write("frame_messages", seeds)

# ---- connection: config byte, then operations (see fuzz_connection.cpp for the layout).
# Ops: keep in step with `enum class Op` and `dictionary()` there.
OP = dict(receive=0, bytes=2, hello=3, truncated=4, ids=5, due=6, wake=7, advance=8, transport_closed=9,
          approve=10, deny=11, send_data=12, close=13, remove_trust=14, open_again=15)
MSG = dict(cmi=0, bad_cmi=1, hello_ready_60000=3, hello_ready=4, hello_pending_60000=5, hello_pending_1500=6,
           hello_pending_20000=7, hello_pending=8, hello_prolongation=9, hello_ready_500=10, hello_aborted=11,
           announce_max=12, select=13, announce_max_2=14, select_1_1=15, announce_utf16=16, prot_error=17,
           legacy_error=18, pin_none=19, pin_required=20, pin_optional=21, pin_ok=22, pin_error=23,
           pin_input=24, am_request=25, am_demo=26, am_b=27, am_empty=28, unknown=29, broken_json=30,
           data=31, data_other=32, data_scalar=33, close_announce=34, close_confirm=35, close_in_control=36,
           hello_in_end=37)
SERVER, TRUSTED, WAITING, SHORT = 0x01, 0x02, 0x04, 0x20
KNOWN_DEMO, KNOWN_B = 0x08, 0x10


def recv(*names):
    return b"".join(bytes([OP["receive"], MSG[n]]) for n in names)


def op(name, *operands):
    return bytes([OP[name], *operands])


def sized(text):
    b = text.encode() if isinstance(text, str) else text
    return bytes([len(b)]) + b


to_data_client = recv("cmi", "hello_ready_60000", "select", "pin_none", "am_request", "am_demo")
to_data_server = recv("cmi", "hello_ready_60000", "announce_max", "select", "pin_none", "am_request", "am_demo")
seeds = [
    ("client-trusted-full", bytes([TRUSTED]) + to_data_client + recv("data") + op("send_data", 0)
     + recv("close_announce")),
    ("server-trusted-full", bytes([SERVER | TRUSTED]) + to_data_server + recv("data", "data_other", "data_scalar")
     + op("close") + sized("bye") + recv("close_confirm")),
    ("client-pairing-approved", bytes([WAITING]) + recv("cmi", "hello_ready_60000") + op("due")
     + recv("hello_ready_60000") + op("approve") + recv("select", "pin_none", "am_demo")),
    ("server-pairing-approved-late", bytes([SERVER | WAITING]) + recv("cmi", "hello_pending_60000") + op("due")
     + op("approve") + recv("hello_ready", "announce_max", "select", "pin_ok", "am_request")),
    ("server-pairing-denied", bytes([SERVER | WAITING]) + recv("cmi", "hello_pending_60000") + op("deny")
     + op("due")),
    ("client-untrusted-no-wait", bytes([0]) + recv("cmi") + op("due")),
    ("client-peer-prolongs", bytes([TRUSTED]) + recv("cmi", "hello_prolongation") + op("advance", 0, 0x80, 0)
     + recv("hello_prolongation", "hello_ready") + recv("select_1_1")),
    ("client-every-timeout", bytes([TRUSTED | SHORT]) + recv("cmi") + op("due") * 6),
    ("server-cmi-timeout", bytes([SERVER | TRUSTED]) + op("due")),
    ("server-bad-cmi", bytes([SERVER | TRUSTED]) + recv("bad_cmi")),
    ("server-announce-2", bytes([SERVER | TRUSTED]) + recv("cmi", "hello_ready", "announce_max_2", "select")),
    ("server-announce-utf16", bytes([SERVER | TRUSTED]) + recv("cmi", "hello_ready", "announce_utf16")),
    ("client-prot-errors", bytes([TRUSTED]) + recv("cmi", "hello_ready", "prot_error")),
    ("client-legacy-error", bytes([TRUSTED]) + recv("cmi", "hello_ready", "legacy_error")),
    ("client-pin-required", bytes([TRUSTED]) + recv("cmi", "hello_ready", "select", "pin_required")),
    ("client-pin-error", bytes([TRUSTED]) + recv("cmi", "hello_ready", "select", "pin_error")),
    ("client-pin-optional", bytes([TRUSTED]) + recv("cmi", "hello_ready", "select", "pin_optional", "pin_input")),
    ("client-known-id-mismatch", bytes([TRUSTED | KNOWN_DEMO]) + recv("cmi", "hello_ready", "select", "pin_none",
                                                                      "am_b") + op("due") * 2),
    ("client-empty-id", bytes([TRUSTED | KNOWN_B]) + recv("cmi", "hello_ready", "select", "pin_none", "am_empty")),
    ("client-bad-input-in-data", bytes([TRUSTED]) + to_data_client
     + recv("unknown", "broken_json", "close_in_control", "hello_in_end", "hello_ready")
     + op("bytes") + sized(b"\x02\xff") + op("truncated", MSG["data"], 30) + op("remove_trust") + op("due")),
    ("server-remove-trust-early", bytes([SERVER | TRUSTED]) + recv("cmi") + op("remove_trust")),
    ("client-peer-aborts", bytes([TRUSTED]) + recv("cmi", "hello_aborted")),
    ("client-pending-peer-aborts", bytes([WAITING]) + recv("cmi", "hello_pending_20000", "hello_aborted")),
    ("client-pending-short-wait", bytes([WAITING]) + recv("cmi", "hello_ready_500") + op("due")),
    ("client-pending-1500", bytes([WAITING | SHORT]) + recv("cmi", "hello_pending_1500") + op("due") * 4),
    ("client-fuzzed-hello", bytes([WAITING]) + recv("cmi") + op("hello", 0x0d, *([0xff] * 8), 0)
     + op("hello", 0x04, *([0xff] * 8), 20) + op("due") * 3),
    ("client-transport-closed", bytes([TRUSTED]) + recv("cmi", "hello_ready") + op("transport_closed")
     + sized("peer went away")),
    ("client-close-announce-early", bytes([TRUSTED]) + recv("cmi", "close_announce")),
    # Wake-ups before, at and long after the access-methods deadline (60 s), in ms: early ones must do nothing.
    ("client-wake", bytes([TRUSTED]) + to_data_client
     + b"".join(op("wake", ms >> 8, ms & 0xFF) for ms in (0, 1, 59998, 1, 1, 65535))),
    # OpenEEBUS (NIBE): the ready peer echoes our pending phase to our prolongation request, and begins the
    # protocol handshake while we are still pending.
    ("client-openeebus-echo", bytes([WAITING]) + recv("cmi", "hello_ready_60000") + op("due")
     + op("hello", 0x04, *(90000).to_bytes(8, "big"), 0) + op("due") + op("approve")
     + recv("select", "pin_none", "am_request", "am_demo")),
    ("server-openeebus-early-announce", bytes([SERVER | WAITING]) + recv("cmi", "hello_ready_60000", "announce_max")
     + op("due") + op("approve") + recv("select", "pin_none", "am_request", "am_demo")),
    ("client-pending-oversleeps", bytes([WAITING]) + recv("cmi", "hello_ready_60000")
     + op("advance", 0x01, 0x24, 0xF8) + op("due")),
    ("client-own-id", bytes([TRUSTED | 0x40]) + sized("shipd-Fuzz-ID-1") + to_data_client),
    ("client-open-again", bytes([TRUSTED]) + op("open_again") + recv("cmi") + op("open_again")),
    ("server-ids", bytes([SERVER | TRUSTED]) + to_data_server + op("ids") + sized("Demo-EVSE-234567890")
     + op("ids") + sized("other") + op("send_data", 5) + sized('{"datagram":{"x":[1,{}]}}')),
]
write("connection", seeds)

# ---- txt: TXT strings, one a line
ski = "0123456789abcdef0123456789abcdef01234567"
peer = ["txtvers=1", "path=/ship/", "id=Wallbox-42", "ski=" + ski, "brand=Volt", "model=WB 11",
        "type=ChargingStation", "register=true", "serial=SN 9", "cat=3,7"]
seeds = [
    ("peer", "\n".join(peer)),
    ("ours", "\n".join(["txtvers=1", "path=/ship/", "id=Demo-EMS-0001", "ski=" + ski, "brand=Demo",
                        "model=EMS 1", "type=EnergyManagementSystem", "register=false", "cat=2"])),
    ("upper-keys", "\n".join(p.split("=", 1)[0].upper() + "=" + p.split("=", 1)[1] for p in peer)),
    ("ski-typed", "\n".join(peer[:3] + ["ski=0123 4567 89AB CDEF 0123-4567-89ab-cdef-0123-4567"] + peer[4:])),
    ("repeated-keys", "\n".join(peer + ["id=Other", "txtvers=2", "cat=x"])),
    ("bad-cat", "\n".join(peer[:-1] + ["cat=1,,2"])),
    ("cat-spaces", "\n".join(peer[:-1] + ["cat= 1 , 2 ,65535"])),
    ("missing-register", "\n".join(p for p in peer if not p.startswith("register"))),
    ("bool-attribute", "\n".join(peer + ["flag", "=nokey"])),
    ("utf8-text", "\n".join(peer[:4] + ["brand=Wärmepumpe GmbH & Co. KG — Ø 32 bytes+", "model=a=b;c"] + peer[6:])),
    ("cat-only", "cat=1,2,3"),
]
write("txt", seeds)

# ---- config: JSON config texts
example = (ROOT / "daemon" / "shipd.conf.example").read_text()
seeds = [
    ("example", example),
    ("empty", "{}"),
    ("session-bus", '{"bus":"session","port":0,"log_level":"debug"}'),
    ("bus-address", '{"bus_address":"unix:path=/run/shipd-bus","mdns":false}'),
    ("identity", '{"ship_id":"Demo-HEMS-1","brand":"Demo","model":"M","type":"T","serial":"S1",'
                 '"categories":[2,5],"organization":"Org","country":"DE"}'),
    ("policy", '{"auto_accept":true,"wait_for_trust":false,"max_connections":1024,"max_handshakes":1,'
               '"double_connection_rule":"legacy","tls_max_version":"1.2"}'),
    ("listen", '{"listen_address":"::1","state_dir":"/tmp/shipd"}'),
    ("comments", '/* c */ {"port": 4711 // line\n}'),
    ("duplicate", '{"port":1,"port":2}'),
    ("unknown-key", '{"prot":1}'),
    ("both-buses", '{"bus":"system","bus_address":"unix:path=/x"}'),
    ("bad-values", '{"port":65536,"categories":[0],"country":"DEU","ship_id":"a=b"}'),
    ("nul-in-string", '{"state_dir":"/var/lib/shipd\\u0000/x","log_level":"warn\\u0000x"}'),
    ("bom", b'\xef\xbb\xbf{"port":4712,"mdns":false}'),
    ("nested", '{"state_dir":[{"a":{"b":[1,2,{"c":null}]}}]}'),
]
write("config", seeds)
