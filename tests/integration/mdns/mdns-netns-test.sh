#!/usr/bin/env bash
# Two SHIP nodes (mdns-probe, on lib/mdns) on one link, in network namespaces with their own avahi-daemon:
# each finds the other with the right TXT and address; a live `register` change reaches the peer; after an
# avahi-daemon restart the service is announced again; a killed node disappears from the other's view; a node
# started before its avahi-daemon waits for it; one with an SHIP ID already taken is renamed rather than lost;
# a clean stop says goodbye.
# Usage: mdns-netns-test.sh PATH/TO/mdns-probe     (exit 77 = skipped: no namespaces here)
set -u
here=$(cd "$(dirname "$0")" && pwd)
probe=${1:?usage: $0 PATH/TO/mdns-probe}
# shellcheck source=tests/integration/mdns/netns-harness.sh
source "$here/netns-harness.sh"
# Under TSan: libdbus' own lock order on reconnect is reported though it cannot deadlock (see tsan.supp).
export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}suppressions=$here/tsan.supp"

netns_setup
rc=$?
((rc == 0)) || exit $rc

SKI_A=1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d
SKI_B=f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3
declare -A PROBE_PID=()
started=$SECONDS

fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$NETNS_DIR"/*.out; do
        echo "---- $(basename "$f")" >&2
        cat "$f" >&2
    done
    exit 1
}
step() { echo "== [$((SECONDS - started)) s] $*"; }

# start_probe NAME HOST ARGS...: output in $NETNS_DIR/NAME.out, commands through the FIFO $NETNS_DIR/NAME.in.
start_probe() {
    local name=$1 host=$2 fd
    shift 2
    mkfifo "$NETNS_DIR/$name.in"
    exec {fd}<>"$NETNS_DIR/$name.in" # read-write: opening never blocks, and the probe never sees EOF
    eval "PROBE_FD_$name=$fd"
    netns_spawn "$host" "$NETNS_DIR/$name.out" "$probe" "$@" <&"$fd"
    PROBE_PID[$name]=$NETNS_PID
}
tell() { # NAME COMMAND
    local fd_var="PROBE_FD_$1"
    echo "$2" >&"${!fd_var}"
}
lines() { wc -l <"$NETNS_DIR/$1.out"; }
has_line_after() { # FILE AFTER LINE
    tail -n "+$(($2 + 1))" "$1" | grep -qxF -- "$3"
}
# expect NAME LINE SECONDS [AFTER]: the probe prints exactly LINE (after its first AFTER lines) within SECONDS.
expect() {
    netns_wait_until "$3" has_line_after "$NETNS_DIR/$1.out" "${4:-0}" "$2" ||
        fail "$1 did not print within $3 s: $2"
}
stop_probe() { # NAME: clean quit; exit status must be 0 (sanitizers report through it)
    local pid=${PROBE_PID[$1]}
    tell "$1" quit
    netns_wait_until 10 netns_exited "$pid" || fail "$1 did not stop on quit"
    wait "$pid" || fail "$1 exited with status $?"
    unset "PROBE_PID[$1]"
}
cleanup_probes() {
    local name
    for name in "${!PROBE_PID[@]}"; do kill -KILL "${PROBE_PID[$name]}" 2>/dev/null; done
    netns_teardown
}
trap cleanup_probes EXIT

common=(--model "EMS 1" --type EnergyManagementSystem)
start_probe a a --ship-id EMS-A --ski "$SKI_A" --port 4711 --brand Demo --serial SN-A1 --register false "${common[@]}"
start_probe b b --ship-id Wallbox-B --ski "$SKI_B" --port 4712 --brand Volt --model "WB 11" --type ChargingStation \
    --cat 3,7 --register true

peer_a() { # register v6
    echo "peer ski=$SKI_A id=EMS-A instance=EMS-A brand=Demo model=EMS 1 type=EnergyManagementSystem serial=SN-A1" \
        "cat=2 register=$1 path=/ship/ port=4711 address=169.254.77.1 v6=$2"
}
peer_b() { # instance id v6
    echo "peer ski=$SKI_B id=$2 instance=$1 brand=Volt model=WB 11 type=ChargingStation serial= cat=3,7" \
        "register=true path=/ship/ port=4712 address=169.254.77.2 v6=$3"
}
ll_of() { # HOST: its link-local IPv6 address on the veth
    local ns if_var="NETNS_IF_$1"
    ns=$(netns_name "$1")
    ip -n "$ns" -6 -o addr show dev "${!if_var}" scope link | awk '{ split($4, a, "/"); print a[1] }'
}

# The peer's IPv6 link-local address as the other side must report it (with zone), or "-" where the kernel
# gives the namespaces no IPv6.
ll_a=$(ll_of a)
ll_b=$(ll_of b)
v6_a=${ll_a:+$ll_a%veth-b}
v6_b=${ll_b:+$ll_b%veth-a}
[[ -n $ll_a && -n $ll_b ]] || echo "note: no IPv6 link-local addresses here; checking IPv4 only"

step "both announce; each finds the other with its TXT, IPv4 preferred, IPv6 link-local with zone"
expect a "established EMS-A" 15
expect b "established Wallbox-B" 15
expect a "$(peer_b Wallbox-B Wallbox-B "${v6_b:--}")" 15
expect b "$(peer_a false "${v6_a:--}")" 15

step "neither node reports itself"
grep -q "peer ski=$SKI_A" "$NETNS_DIR/a.out" && fail "a reported its own SKI"
grep -q "peer ski=$SKI_B" "$NETNS_DIR/b.out" && fail "b reported its own SKI"

step "the TXT goes out in SHIP's order (avahi-browse prints it reversed)"
txt_a=$(netns_exec b avahi-browse -rpt _ship._tcp | awk -F';' '$1 == "=" && $3 == "IPv4" && $4 == "EMS-A" { print $10 }')
want='"cat=2" "serial=SN-A1" "register=false" "type=EnergyManagementSystem" "model=EMS 1" "brand=Demo"'
want+=" \"ski=$SKI_A\" \"id=EMS-A\" \"path=/ship/\" \"txtvers=1\""
[[ $txt_a == "$want" ]] || fail "TXT of EMS-A as avahi-browse sees it: $txt_a; want $want"

step "a live register change reaches the peer"
tell a "register true"
expect a "ok register true" 5
expect b "$(peer_a true "${v6_a:--}")" 10

step "avahi-daemon restart in a: a announces and browses again"
mark_a=$(lines a)
mark_b=$(lines b)
netns_avahi_restart a || fail "avahi-daemon in a did not come back"
expect b "gone ski=$SKI_A" 10 "$mark_b"
expect b "$(peer_a true "${v6_a:--}")" 20 "$mark_b"
expect a "$(peer_b Wallbox-B Wallbox-B "${v6_b:--}")" 20 "$mark_a"

step "b killed (SIGKILL): it disappears from a's view"
mark_a=$(lines a)
kill -KILL "${PROBE_PID[b]}"
wait "${PROBE_PID[b]}" 2>/dev/null
unset "PROBE_PID[b]"
expect a "gone ski=$SKI_B" 15 "$mark_a"

step "a node started while avahi-daemon is down waits for it, then announces"
netns_avahi_stop b
start_probe c b --ship-id EMS-A --ski "$SKI_B" --port 4712 --brand Volt --model "WB 11" --type ChargingStation \
    --cat 3,7 --register true
netns_wait_until 10 grep -q "avahi-daemon is not running; waiting for it to appear" "$NETNS_DIR/c.out" ||
    fail "c did not report the missing avahi-daemon"
kill -0 "${PROBE_PID[c]}" 2>/dev/null || fail "c gave up without avahi-daemon"
netns_avahi_start b
netns_avahi_wait b || fail "avahi-daemon in b did not come back"

step "and since its SHIP ID is already taken on the link, it is renamed and still found"
expect c "established EMS-A #2" 15
expect a "$(peer_b "EMS-A #2" EMS-A "${v6_b:--}")" 15

step "clean stop: goodbye reaches the peer, exit status 0"
mark_c=$(lines c)
stop_probe a
expect c "gone ski=$SKI_A" 10 "$mark_c"
stop_probe c

step "passed"
