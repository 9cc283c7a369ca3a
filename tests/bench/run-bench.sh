#!/bin/bash
# The standard shipd figures (issue 9): startup to READY=1 and idle RSS, handshake latency for 1 and for 100
# concurrent connections, handshake rate, RSS per idle connection, SIGTERM → exit with the connections up.
# Builds nothing: give it a build directory that holds daemon/shipd and tests/bench/shipbench (release).
#   tests/bench/run-bench.sh build/bench [IDLE_CONNECTIONS]
# A shipbench run with failures still lands in the table (failures column). Starts its own private bus and shipd daemons (by PID, stopped by PID), loopback only. Needs python3 for the
# sd_notify socket (READY=1 with its arrival time) and to read shipbench's JSON.
set -euo pipefail

build=$(realpath "${1:?usage: run-bench.sh BUILD_DIR [IDLE_CONNECTIONS]}")
idle=${2:-1000}
shipd=$build/daemon/shipd
bench=$build/tests/bench/shipbench
for f in "$shipd" "$bench"; do
    [[ -x $f ]] || { echo "run-bench: $f is missing: build it first" >&2; exit 2; }
done

# Every connection is one socket on each side, plus shipd's own: ask for the hard limit.
ulimit -n "$(ulimit -Hn)" || true

work=$(mktemp -d /tmp/shipbench.XXXXXX)
bus_pid=""
shipd_pid=""
cleanup() {
    [[ -n $shipd_pid ]] && kill -KILL "$shipd_pid" 2>/dev/null || true
    [[ -n $bus_pid ]] && kill "$bus_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

dbus-daemon --session --nofork --address="unix:path=$work/bus" --print-address=3 3>"$work/bus.address" 2>/dev/null &
bus_pid=$!
for _ in $(seq 100); do [[ -s $work/bus.address ]] && break; sleep 0.05; done
bus_address=$(head -n1 "$work/bus.address")

# shipd's defaults (32 connections, 8 in handshake) are for a home; the bench wants its ceiling (1024).
cat >"$work/shipd.conf" <<EOF
{ "max_connections": 1024, "max_handshakes": 1024 }
EOF

# Starts shipd with state dir $work/state-$2 (default: its own, fresh); sets shipd_pid, port, ski, startup_ms (spawn → READY=1 received).
start_shipd() {
    local n=$1 state=$work/state-${2:-$1} sock=$work/notify-$1 ready=$work/ready-$1
    python3 - "$sock" >"$ready" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
while True:
    note = s.recv(4096).decode()
    if "READY=1" in note:
        print(time.monotonic_ns(), note.replace("\n", " "))
        break
EOF
    local listener=$!
    for _ in $(seq 200); do [[ -S $sock ]] && break; sleep 0.01; done
    local t0
    t0=$(python3 -c 'import time; print(time.monotonic_ns())')
    NOTIFY_SOCKET=$sock "$shipd" --config "$work/shipd.conf" --state-dir "$state" --port 0 --no-mdns \
        --auto-accept --bus-address "$bus_address" --log-level warn 2>"$work/shipd-$n.log" &
    shipd_pid=$!
    wait "$listener"
    local line
    line=$(cat "$ready")
    startup_ms=$(python3 -c "print(f'{($(cut -d' ' -f1 <<<"$line") - $t0) / 1e6:.1f}')")
    port=$(sed -E 's/.*Listening on port ([0-9]+).*/\1/' <<<"$line")
    ski=$(sed -E 's/.*as SKI ([0-9a-f]{40}).*/\1/' <<<"$line")
}

stop_shipd() {
    kill -TERM "$shipd_pid" 2>/dev/null || true
    wait "$shipd_pid" 2>/dev/null || true
    shipd_pid=""
}

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# The first start creates the certificate (ECDSA key, files written atomically); the restarts load it, as on
# every later boot.
startups=()
for i in 1 2 3 4; do
    start_shipd "s$i" s1
    startups+=("$startup_ms")
    sleep 0.3 # idle reading after it has settled
    idle_rss=$(awk '/VmRSS/ {print $2}' "/proc/$shipd_pid/status")
    stop_shipd
done

start_shipd lat
"$bench" --port "$port" --ski "$ski" --connections 50 --concurrency 1 --pid "$shipd_pid" --json >"$work/c1.json" || true
"$bench" --port "$port" --ski "$ski" --connections 100 --concurrency 100 --pid "$shipd_pid" --json \
    >"$work/c100.json" || true
"$bench" --port "$port" --ski "$ski" --connections 500 --concurrency 16 --messages 20 --pid "$shipd_pid" --json \
    >"$work/rate.json" || true
stop_shipd

start_shipd idle
"$bench" --port "$port" --ski "$ski" --connections "$idle" --concurrency 50 --hold --settle 1000 \
    --pid "$shipd_pid" --sigterm --deadline 300 --json >"$work/idle.json" || true
wait "$shipd_pid" 2>/dev/null || true
shipd_pid=""

echo "shipd bench on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
printf '%-52s %s\n' "figure" "measured"
printf '%-52s %s ms\n' "startup to READY=1 (first: creates cert; 3 restarts)" "${startups[*]}"
printf '%-52s %s KiB\n' "idle daemon RSS" "$idle_rss"
for f in c1 c100; do
    label=$([[ $f == c1 ]] && echo "1 at a time, 50 conns" || echo "100 at once")
    printf '%-52s %s\n' "handshake latency, $label (p50/p90/p99/max)" \
        "$(json "$work/$f.json" "'%.2f / %.2f / %.2f / %.2f ms' % tuple(d['handshake_ms'][k] for k in ('p50','p90','p99','max'))")"
    printf '%-52s %s\n' "  completed, failures" "$(json "$work/$f.json" "d['completed'], d['failures']")"
done
printf '%-52s %s\n' "handshakes/s (500 conns, 16 at a time)" "$(json "$work/rate.json" "'%.0f' % d['handshakes_per_s']")"
printf '%-52s %s\n' "  daemon CPU s per handshake (incl. data)" \
    "$(json "$work/rate.json" "'%.2f ms' % (1000 * d['cpu_s'] / max(d['completed'], 1))")"
printf '%-52s %s\n' "data messages/s (20 per conn, client-side written)" "$(json "$work/rate.json" "'%.0f' % d['messages_per_s']")"
printf '%-52s %s\n' "idle connections held" "$(json "$work/idle.json" "d['completed'], d['failures']")"
printf '%-52s %s\n' "RSS per idle connection" "$(json "$work/idle.json" "'%s KiB (%s → %s)' % (d['rss_per_connection_kib'] and round(d['rss_per_connection_kib'], 1), d['rss_before_kib'], d['rss_after_kib'])")"
printf '%-52s %s\n' "SIGTERM → exit with those connections" "$(json "$work/idle.json" "d['sigterm_exit_ms'] and '%.1f ms' % d['sigterm_exit_ms']")"
echo "(raw JSON:)"
for f in c1 c100 rate idle; do echo "== $f"; cat "$work/$f.json"; done
