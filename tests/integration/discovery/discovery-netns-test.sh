#!/usr/bin/env bash
# Discovery end to end: two real shipd daemons, each in its own network namespace with its own system-type
# dbus-daemon and avahi-daemon (tests/integration/mdns/netns-harness.sh), driven over D-Bus with busctl only.
# Each finds the other over mDNS with the right fields; after mutual Trust (no Connect) they connect; an
# avahi-daemon restart loses neither the connection nor the announcement; a re-announced model reaches the
# peer's Peer object; AutoAccept over D-Bus turns the TXT register=true; the QR text matches --print-qr; a
# SIGKILLed daemon leaves the other's view, comes back, is dialled again; a clean stop says goodbye; with IPv6
# link-local only, the zone-qualified address is listed and dialled.
# Usage: discovery-netns-test.sh PATH/TO/shipd     (exit 77 = skipped: no namespaces here)
set -u
here=$(cd "$(dirname "$0")" && pwd)
shipd=${1:?usage: $0 PATH/TO/shipd}
# shellcheck source=tests/integration/mdns/netns-harness.sh
source "$here/../mdns/netns-harness.sh"
command -v busctl >/dev/null || {
    echo "SKIP: busctl is not installed" >&2
    exit 77
}

netns_setup
rc=$?
((rc == 0)) || exit $rc

declare -A SHIPD_PID=() SKI=() QR=()
declare -A SHIP_ID=([a]=EMS-A [b]=Wallbox-B)
MONITOR_PID=""
started=$SECONDS

step() { echo "== [$((SECONDS - started)) s] $*"; }
fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$NETNS_DIR"/*/shipd.log "$NETNS_DIR"/*/avahi.log; do
        [[ -f $f ]] || continue
        echo "---- ${f#"$NETNS_DIR"/}" >&2
        cat "$f" >&2
    done
    exit 1
}
cleanup() {
    local host
    for host in "${!SHIPD_PID[@]}"; do kill -KILL "${SHIPD_PID[$host]}" 2>/dev/null; done
    [[ -z $MONITOR_PID ]] || kill "$MONITOR_PID" 2>/dev/null
    netns_teardown
}
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------- D-Bus

bus() { # HOST busctl-ARGS...: busctl on that host's bus (a unix socket, reachable from any namespace)
    local host=$1
    shift
    busctl --address="$(netns_bus "$host")" --timeout=5 "$@"
}
hub_call() { bus "$1" call org.shipd.Hub1 /org/shipd/Hub1 org.shipd.Hub1 "${@:2}"; }
hub_prop() { bus "$1" get-property org.shipd.Hub1 /org/shipd/Hub1 org.shipd.Hub1 "$2"; }
peer_prop() { bus "$1" get-property org.shipd.Hub1 "/org/shipd/Hub1/peer/$2" org.shipd.Hub1.Peer "$3"; }

# expect SECONDS WANT CMD...: CMD prints exactly WANT within SECONDS (tried every 0.1 s).
LAST=""
output_is() {
    local want=$1
    shift
    LAST=$("$@" 2>&1)
    [[ $LAST == "$want" ]]
}
expect() {
    local seconds=$1 want=$2
    shift 2
    netns_wait_until "$seconds" output_is "$want" "$@" ||
        fail "'$*' did not print within $seconds s:
  want: $want
  last: $LAST"
}
# expect_either SECONDS WANT1 WANT2 CMD...: CMD prints one of them within SECONDS.
output_is_either() {
    local one=$1 two=$2
    shift 2
    LAST=$("$@" 2>&1)
    [[ $LAST == "$one" || $LAST == "$two" ]]
}
expect_either() {
    local seconds=$1 one=$2 two=$3
    shift 3
    netns_wait_until "$seconds" output_is_either "$one" "$two" "$@" ||
        fail "'$*' did not print within $seconds s:
  want: $one
    or: $two
  last: $LAST"
}
# The peer's LastError says why the last dial failed.
check_nonempty_last_error() {
    local host=$1 p
    p=$(other "$host")
    LAST=$(peer_prop "$host" "${SKI[$p]}" LastError 2>&1)
    [[ $LAST == 's "dial to '* ]] || fail "LastError of $p in $host: $LAST"
}
# Once only: CMD prints WANT now.
check() {
    local want=$1
    shift
    output_is "$want" "$@" || fail "'$*':
  want: $want
  got:  $LAST"
}

# ---------------------------------------------------------------------------------------------- shipd

write_config() { # HOST MODEL
    if [[ $1 == a ]]; then
        printf '{ "brand": "Demo", "model": "%s", "type": "EnergyManagementSystem", "serial": "SN-A1" }\n' \
            "$2" >"$NETNS_DIR/a/shipd.conf"
    else
        printf '{ "brand": "Volt", "model": "%s", "type": "ChargingStation", "categories": [3, 7] }\n' \
            "$2" >"$NETNS_DIR/b/shipd.conf"
    fi
}
shipd_args() { # HOST
    SHIPD_ARGS=(--config "$NETNS_DIR/$1/shipd.conf" --state-dir "$NETNS_DIR/$1/state" --ship-id "${SHIP_ID[$1]}")
}
start_shipd() { # HOST: mDNS on, not auto-accepting, serving on the host's own bus; waits for its name
    local host=$1
    shipd_args "$host"
    netns_spawn "$host" "$NETNS_DIR/$host/shipd.log" "$shipd" --port 4711 --bus-address "$(netns_bus "$host")" --log-level debug \
        "${SHIPD_ARGS[@]}"
    SHIPD_PID[$host]=$NETNS_PID
    expect 10 "s \"${SKI[$host]}\"" hub_prop "$host" LocalSKI
}
stop_shipd() { # HOST SIGNAL: sends it, waits for the exit; SIGTERM must end with status 0 (sanitizers too)
    local host=$1 sig=$2 pid=${SHIPD_PID[$1]} status
    kill "-$sig" "$pid"
    # bash reports a job killed by a signal on stderr ("Killed"): expected here, so not shown.
    { netns_wait_until 10 netns_exited "$pid"; } 2>/dev/null || fail "shipd in $host did not exit on SIG$sig"
    wait "$pid" 2>/dev/null
    status=$?
    unset "SHIPD_PID[$host]"
    [[ $sig != TERM ]] || ((status == 0)) || fail "shipd in $host exited with status $status on SIGTERM"
}

other() { [[ $1 == a ]] && echo b || echo a; }
ip_of() { [[ $1 == a ]] && echo "$NETNS_IP_a" || echo "$NETNS_IP_b"; }

# What HOST's ListDiscovered must say when it sees its peer as announced with MODEL, at ADDRESS (default: the
# peer's IPv4 address).
discovered_line() { # HOST MODEL [ADDRESS]
    local p
    p=$(other "$1")
    if [[ $p == a ]]; then
        echo "a(ssssssq) 1 \"${SKI[a]}\" \"EMS-A\" \"Demo\" \"$2\" \"EnergyManagementSystem\" \"${3:-$(ip_of a)}\" 4711"
    else
        echo "a(ssssssq) 1 \"${SKI[b]}\" \"Wallbox-B\" \"Volt\" \"$2\" \"ChargingStation\" \"${3:-$(ip_of b)}\" 4711"
    fi
}
peers_line() { # HOST STATE TRUSTED CONNECTED: HOST's ListPeers holding only its peer
    local p
    p=$(other "$1")
    echo "a(sssbb) 1 \"${SKI[$p]}\" \"${SHIP_ID[$p]}\" \"$2\" $3 $4"
}
connected_since() { # HOST: when HOST's connection to its peer began (µs), empty while not connected
    local v
    v=$(peer_prop "$1" "${SKI[$(other "$1")]}" ConnectedSince) || return 1
    v=${v#t }
    [[ $v != 0 ]] && echo "$v"
}
wait_gone() { # HOST SECONDS: the peer leaves HOST's ListDiscovered; prints how long that took (ms)
    local t0 t1
    t0=$(date +%s%N)
    expect "$2" "a(ssssssq) 0" hub_call "$1" ListDiscovered
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
}

# ---------------------------------------------------------------------------------------------- the test

model_a="EMS 1"
model_b="WB 11"
mkdir -p "$NETNS_DIR/a/state" "$NETNS_DIR/b/state"
write_config a "$model_a"
write_config b "$model_b"
for host in a b; do
    shipd_args "$host"
    "$shipd" --print-ski "${SHIPD_ARGS[@]}" >"$NETNS_DIR/$host/print-ski" 2>&1 ||
        fail "shipd --print-ski in $host: $(cat "$NETNS_DIR/$host/print-ski")"
    [[ $(wc -l <"$NETNS_DIR/$host/print-ski") == 1 ]] || fail "--print-ski in $host printed more than one line"
    SKI[$host]=$(cat "$NETNS_DIR/$host/print-ski")
    [[ ${SKI[$host]} =~ ^[0-9a-f]{40}$ ]] || fail "--print-ski in $host printed no SKI: ${SKI[$host]}"
    QR[$host]=$("$shipd" --print-qr "${SHIPD_ARGS[@]}" 2>&1) || fail "shipd --print-qr in $host: ${QR[$host]}"
done

step "both daemons start on their namespace's bus with mDNS on; the identity --print-ski made is the one used"
start_shipd a
# An app's way to follow the view: a's DiscoveredChanged signals, from before b exists.
bus a monitor --match "type='signal',interface='org.shipd.Hub1',member='DiscoveredChanged'" \
    >"$NETNS_DIR/a/monitor.out" 2>&1 &
MONITOR_PID=$!
start_shipd b

step "each finds the other in ListDiscovered (SKI, SHIP ID, brand, model, type, 169.254.77.x, port 4711);"\
    "a said so with DiscoveredChanged"
expect 15 "$(discovered_line a "$model_b")" hub_call a ListDiscovered
expect 15 "$(discovered_line b "$model_a")" hub_call b ListDiscovered
netns_wait_until 5 grep -q "Member=DiscoveredChanged" "$NETNS_DIR/a/monitor.out" ||
    fail "a emitted no DiscoveredChanged: $(cat "$NETNS_DIR/a/monitor.out")"
kill "$MONITOR_PID"
wait "$MONITOR_PID" 2>/dev/null
MONITOR_PID=""
step "discovered but untrusted: listed as a peer, nobody dials"
check "$(peers_line a none false false)" hub_call a ListPeers
check "$(peers_line b none false false)" hub_call b ListPeers

step "after mutual Trust (no Connect) they connect from the mDNS address alone"
hub_call a Trust s "${SKI[b]}" >/dev/null || fail "Trust on a: $LAST"
hub_call b Trust s "${SKI[a]}" >/dev/null || fail "Trust on b: $LAST"
expect 10 "$(peers_line a completed true true)" hub_call a ListPeers
expect 10 "$(peers_line b completed true true)" hub_call b ListPeers
since_a=$(connected_since a) || fail "a has no ConnectedSince for b"
since_b=$(connected_since b) || fail "b has no ConnectedSince for a"
check "s \"$(ip_of b)\"" peer_prop a "${SKI[b]}" Host

step "avahi-daemon in b stops: b leaves a's view and b's view empties, the connection stays"
netns_avahi_stop b
expect 10 "a(ssssssq) 0" hub_call a ListDiscovered
expect 10 "a(ssssssq) 0" hub_call b ListDiscovered
step "avahi-daemon in b is back: b announces and browses again, same connection on both sides"
netns_avahi_start b
netns_avahi_wait b || fail "avahi-daemon in b did not come back"
expect 15 "$(discovered_line a "$model_b")" hub_call a ListDiscovered
expect 15 "$(discovered_line b "$model_a")" hub_call b ListDiscovered
check "$(peers_line a completed true true)" hub_call a ListPeers
check "$(peers_line b completed true true)" hub_call b ListPeers
check "$since_a" connected_since a
check "$since_b" connected_since b

step "QRCode is SHIP;SKI:..;ID:..;...;FPH256:..;SPSEC:..;ENDSHIP; and the same text --print-qr printed"
# FPH256: SHA-256 of the node's certificate (as openssl computes it); SPSEC: its Pairing Service secret.
fph() { openssl x509 -in "$NETNS_DIR/$1/state/cert.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d :; }
want_qr_a="SHIP;SKI:${SKI[a]};ID:EMS-A;BRAND:Demo;TYPE:EnergyManagementSystem;MODEL:EMS 1;SERIAL:SN-A1;CAT:2;FPH256:$(fph a);SPSEC:"
want_qr_b="SHIP;SKI:${SKI[b]};ID:Wallbox-B;BRAND:Volt;TYPE:ChargingStation;MODEL:WB 11;CAT:3,7;FPH256:$(fph b);SPSEC:"
[[ ${QR[a]} == "$want_qr_a"* && ${QR[a]#"$want_qr_a"} =~ ^[0-9A-F]{32}\;ENDSHIP\;$ ]] ||
    fail "--print-qr in a: ${QR[a]}; want ${want_qr_a}<32 hex>;ENDSHIP;"
[[ ${QR[b]} == "$want_qr_b"* && ${QR[b]#"$want_qr_b"} =~ ^[0-9A-F]{32}\;ENDSHIP\;$ ]] ||
    fail "--print-qr in b: ${QR[b]}; want ${want_qr_b}<32 hex>;ENDSHIP;"
check "s \"${QR[a]}\"" hub_prop a QRCode
check "s \"${QR[b]}\"" hub_prop b QRCode

step "b re-announces a new model (SIGHUP): a's ListDiscovered and a's Peer object for b follow"
model_b="WB 22"
write_config b "$model_b"
kill -HUP "${SHIPD_PID[b]}"
expect 10 "$(discovered_line a "$model_b")" hub_call a ListDiscovered
expect 5 "s \"$model_b\"" peer_prop a "${SKI[b]}" Model
check "$since_a" connected_since a

step "AutoAccept set on b over D-Bus: b's TXT says register=true, as a's avahi-daemon sees it"
txt_of_b() { # the TXT of b's service as host a resolves it (avahi-browse prints it reversed)
    netns_exec a avahi-browse -rpt _ship._tcp 2>/dev/null |
        awk -F';' '$1 == "=" && $3 == "IPv4" && $4 == "Wallbox-B" { print $10; exit }'
}
has_register() { [[ $(txt_of_b) == *"\"register=$1\""* ]]; }
has_register false || fail "b's TXT before AutoAccept: $(txt_of_b)"
bus b set-property org.shipd.Hub1 /org/shipd/Hub1 org.shipd.Hub1 AutoAccept b true || fail "set AutoAccept on b"
netns_wait_until 10 has_register true || fail "b's TXT after AutoAccept: $(txt_of_b)"

step "shipd in b is killed (SIGKILL): it leaves a's view, the connection ends, trust stays"
stop_shipd b KILL
ms=$(wait_gone a 15) || exit 1
echo "   b left a's ListDiscovered ${ms} ms after the SIGKILL"
# a keeps dialling b's last address by policy, and each failed dial shows: State "error" (issue 16).
expect 10 "$(peers_line a error true false)" hub_call a ListPeers
check_nonempty_last_error a

step "b starts again: a finds it and they connect again, still without Connect; QRCode = --print-qr again"
start_shipd b
expect 15 "$(discovered_line a "$model_b")" hub_call a ListDiscovered
expect 15 "$(discovered_line b "$model_a")" hub_call b ListDiscovered
expect 15 "$(peers_line a completed true true)" hub_call a ListPeers
expect 15 "$(peers_line b completed true true)" hub_call b ListPeers
shipd_args b
check "s \"$("$shipd" --print-qr "${SHIPD_ARGS[@]}")\"" hub_prop b QRCode
[[ $LAST == *"MODEL:$model_b;"* ]] || fail "b's QRCode after its restart is not about $model_b: $LAST"

step "shipd in a stops (SIGTERM): its goodbye takes it out of b's view; both exit 0"
stop_shipd a TERM
ms=$(wait_gone b 10) || exit 1
echo "   a left b's ListDiscovered ${ms} ms after the SIGTERM"
expect_either 10 "$(peers_line b none true false)" "$(peers_line b error true false)" hub_call b ListPeers
stop_shipd b TERM

ll_a=$(netns_link_local a)
ll_b=$(netns_link_local b)
if [[ -n $ll_a && -n $ll_b ]]; then
    step "IPv4 taken off both links: each finds the other at its IPv6 link-local address with the zone"
    netns_drop_ipv4 a || fail "could not remove a's IPv4 address"
    netns_drop_ipv4 b || fail "could not remove b's IPv4 address"
    # Fresh caches: nobody may still hold the other's IPv4 address.
    netns_avahi_restart a || fail "avahi-daemon in a did not come back"
    netns_avahi_restart b || fail "avahi-daemon in b did not come back"
    start_shipd a
    start_shipd b
    expect 15 "$(discovered_line a "$model_b" "$ll_b%$NETNS_IF_a")" hub_call a ListDiscovered
    expect 15 "$(discovered_line b "$model_a" "$ll_a%$NETNS_IF_b")" hub_call b ListDiscovered
    step "and, trusted from before (trust.json), they connect over it: a dial with that zone works"
    expect 15 "$(peers_line a completed true true)" hub_call a ListPeers
    expect 15 "$(peers_line b completed true true)" hub_call b ListPeers
    check "s \"$ll_b%$NETNS_IF_a\"" peer_prop a "${SKI[b]}" Host
    stop_shipd a TERM
    stop_shipd b TERM
else
    echo "note: no IPv6 link-local addresses here; the IPv6 step is left out"
fi

step "passed"
