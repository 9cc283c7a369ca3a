#!/usr/bin/env bash
# The SHIP Pairing Service end to end: two real shipd in network namespaces, each with its own dbus-daemon
# and avahi-daemon (tests/integration/mdns/netns-harness.sh), driven with busctl; forged records published
# with avahi-publish. devA = shipd in host a (OpenPairingWindow), devZ = shipd in host b (RequestPairing with
# a's QR text). Checks: an announcement with a wrong HMAC is refused (digest-mismatch); b's real request is
# accepted, the window closes, b dials a and both reach data exchange with nobody calling Trust on a; b's
# record published again under another name is refused as a replay, and still after a restarts (the replay
# guard is persisted).
# Usage: pairing-service-netns-test.sh PATH/TO/shipd     (exit 77 = skipped: no namespaces here)
set -u
here=$(cd "$(dirname "$0")" && pwd)
shipd=${1:?usage: $0 PATH/TO/shipd}
# shellcheck source=tests/integration/mdns/netns-harness.sh
source "$here/../mdns/netns-harness.sh"
for tool in busctl avahi-publish avahi-browse openssl; do
    command -v "$tool" >/dev/null || {
        echo "SKIP: $tool is not installed" >&2
        exit 77
    }
done

netns_setup
rc=$?
((rc == 0)) || exit $rc

declare -A SHIPD_PID=() SKI=()
declare -A SHIP_ID=([a]=EMS-A [b]=CU-B)
PUBLISH_PID=""
started=$SECONDS

step() { echo "== [$((SECONDS - started)) s] $*"; }
fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$NETNS_DIR"/*/shipd.log "$NETNS_DIR"/*/publish.log; do
        [[ -f $f ]] || continue
        echo "---- ${f#"$NETNS_DIR"/}" >&2
        grep -v 'lws:' "$f" >&2
    done
    exit 1
}
cleanup() {
    local host
    for host in "${!SHIPD_PID[@]}"; do kill -KILL "${SHIPD_PID[$host]}" 2>/dev/null; done
    [[ -z $PUBLISH_PID ]] || kill "$PUBLISH_PID" 2>/dev/null
    netns_teardown
}
trap cleanup EXIT

bus() {
    local host=$1
    shift
    busctl --address="$(netns_bus "$host")" --timeout=5 "$@"
}
hub_call() { bus "$1" call org.shipd.Hub1 /org/shipd/Hub1 org.shipd.Hub1 "${@:2}"; }
hub_prop() { bus "$1" get-property org.shipd.Hub1 /org/shipd/Hub1 org.shipd.Hub1 "$2"; }

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

start_shipd() { # HOST
    local host=$1
    netns_spawn "$host" "$NETNS_DIR/$host/shipd.log" "$shipd" --port 4711 --bus-address "$(netns_bus "$host")" \
        --log-level debug --state-dir "$NETNS_DIR/$host/state" --ship-id "${SHIP_ID[$host]}"
    SHIPD_PID[$host]=$NETNS_PID
    netns_wait_until 10 hub_prop "$host" LocalSKI >/dev/null || fail "shipd in $host did not come up"
    SKI[$host]=$(hub_prop "$host" LocalSKI | cut -d'"' -f2)
}
stop_shipd() { # HOST
    local host=$1 pid=${SHIPD_PID[$1]}
    kill -TERM "$pid"
    { netns_wait_until 10 netns_exited "$pid"; } 2>/dev/null || fail "shipd in $host did not exit on SIGTERM"
    wait "$pid" 2>/dev/null
    unset "SHIPD_PID[$host]"
}

# PairingServiceResult of host a: (instance, trust_id, result, time) — prints "instance result".
result_of_a() {
    local v
    v=$(hub_prop a PairingServiceResult) || return 1
    # (ssst) "instance" "trust id" "result" 1234
    awk -F'"' '{ print $2 " " $6 }' <<<"$v"
}
expect_result() { # INSTANCE RESULT SECONDS
    expect "$3" "$1 $2" result_of_a
}

# Publishes a _shippairing._tcp record from host b with avahi-publish, which sends its TXT arguments in
# the order given (checked with tcpdump); avahi-browse prints them last first.
publish() { # INSTANCE STRING...
    local instance=$1
    shift
    [[ -z $PUBLISH_PID ]] || unpublish
    netns_spawn b "$NETNS_DIR/b/publish.log" avahi-publish -s "$instance" _shippairing._tcp 1 "$@"
    PUBLISH_PID=$NETNS_PID
}
unpublish() {
    kill "$PUBLISH_PID" 2>/dev/null
    wait "$PUBLISH_PID" 2>/dev/null
    PUBLISH_PID=""
}

# HMAC-SHA256 with key = SECRET ‖ NONCE (raw bytes, given as hex) over MESSAGE, 64 upper-case hex.
hmac() { # SECRET_HEX NONCE_HEX MESSAGE
    printf '%s' "$3" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1$2" | awk '{ print toupper($NF) }'
}

qr_field() { # QR KEY
    tr ';' '\n' <<<"$1" | sed -n "s/^$2://p" | head -1
}

# ---------------------------------------------------------------------------------------------- the test

mkdir -p "$NETNS_DIR/a/state" "$NETNS_DIR/b/state"
step "both daemons start with mDNS; a's QR text carries FPH256 and SPSEC"
start_shipd a
start_shipd b
QR_A=$(hub_prop a QRCode | cut -d'"' -f2)
FPH_A=$(qr_field "$QR_A" FPH256)
SPSEC_A=$(qr_field "$QR_A" SPSEC)
[[ $FPH_A =~ ^[0-9A-F]{64}$ && $SPSEC_A =~ ^[0-9A-F]{32}$ ]] || fail "a's QR text lacks FPH256/SPSEC: $QR_A"
hub_call a OpenPairingWindow u 120 >/dev/null || fail "OpenPairingWindow on a failed"
window=$(hub_prop a PairingWindow | cut -d' ' -f2)
((window > 0)) || fail "PairingWindow is $window while the window is open"

step "a record with a wrong HMAC (the secret mistyped) is refused: digest-mismatch, nobody trusted"
nonce=000102030405060708090A0B0C0D0E0F
trust_par=$(printf 'D%.0s' {1..64})
fields=("txtvers=1" "parType=fpSha256" "forId=${SHIP_ID[a]}" "forPar=$FPH_A" "trustId=i:1_u:forger"
    "trustPar=$trust_par" "trustCurve=secp256r1" "type=addCu" "trustNonce=$nonce" "alg=hmacSha256")
message=$(printf '%s;' "${fields[@]}")
wrong=$(hmac 00000000000000000000000000000000 "$nonce" "$message")
publish forged-1 "${fields[@]}" "digest=$wrong"
expect_result forged-1 digest-mismatch 20
# The same record with the right secret would have been accepted: what was wrong was only the digest.
right=$(hmac "$SPSEC_A" "$nonce" "$message")
[[ $right != "$wrong" ]] || fail "the two digests agree"
unpublish
window=$(hub_prop a PairingWindow | cut -d' ' -f2)
((window > 0)) || fail "a refused record closed the window"

step "b asks to pair with a's QR text: a accepts, closes the window, and b connects; nobody calls Trust on a"
hub_call b RequestPairing s "$QR_A" >/dev/null || fail "RequestPairing on b: $(hub_call b RequestPairing s "$QR_A" 2>&1)"
expect_result "${SHIP_ID[b]}-pairing#1" accepted 20
expect 5 "t 0" hub_prop a PairingWindow
expect 30 "a(sssbb) 1 \"${SKI[b]}\" \"${SHIP_ID[b]}\" \"completed\" true true" hub_call a ListPeers
expect 10 "a(sssbb) 1 \"${SKI[a]}\" \"${SHIP_ID[a]}\" \"completed\" true true" hub_call b ListPeers

step "b's record published again under another name (same digest): refused as a replay"
record=$(netns_exec a avahi-browse -rpt _shippairing._tcp 2>/dev/null | grep "^=" | grep "${SHIP_ID[b]}-pairing" | head -1)
[[ -n $record ]] || fail "avahi-browse in a does not see b's pairing record"
# avahi-browse prints the TXT strings last first: reversed back, they are the record as sent.
mapfile -t shown < <(grep -o '"[^"]*"' <<<"${record##*;}" | tr -d '"')
wire=()
for ((i = ${#shown[@]} - 1; i >= 0; i--)); do wire+=("${shown[i]}"); done
[[ ${wire[0]} == txtvers=1 ]] || fail "b's record does not start with txtvers: ${wire[*]}"
hub_call b StopPairingRequest >/dev/null
hub_call a OpenPairingWindow u 120 >/dev/null
publish replay-1 "${wire[@]}"
expect_result replay-1 replay 20

step "after a restart of a the guard still knows the digest: refused as a replay again"
unpublish
stop_shipd a
start_shipd a
hub_call a OpenPairingWindow u 120 >/dev/null
publish replay-2 "${wire[@]}"
expect_result replay-2 replay 20
unpublish
grep -q '"replayGuard"' "$NETNS_DIR/a/state/pairing.json" || fail "no replay guard in a's pairing.json"
[[ $(stat -c %a "$NETNS_DIR/a/state/pairing.json") == 600 ]] || fail "pairing.json is not 0600"

step "done"
