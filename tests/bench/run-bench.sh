#!/bin/bash
# The standard shipd figures (issue 9): startup to READY=1 and idle RSS, handshake latency for 1 and for 100
# concurrent connections, handshake rate, RSS per idle connection, SIGTERM → exit with the connections up.
# Builds nothing: give it a build directory that holds daemon/shipd and tests/bench/shipbench (release).
#   tests/bench/run-bench.sh build/bench [IDLE_CONNECTIONS=1000] [BIG_CONNECTIONS=10000, 0 skips]
#   DATA_MESSAGES (default 20000) sets the data-path message count.
# A shipbench run with failures still lands in the table (failures column). Starts its own private bus and shipd daemons (by PID, stopped by PID), loopback only. Needs python3 for the
# sd_notify socket (READY=1 with its arrival time) and to read shipbench's JSON.
set -euo pipefail

build=$(realpath "${1:?usage: run-bench.sh BUILD_DIR [IDLE_CONNECTIONS]}")
idle=${2:-1000}
big=${3:-10000}
data=${DATA_MESSAGES:-20000}
shipd=$build/daemon/shipd
bench=$build/tests/bench/shipbench
dbus_app=$build/tests/bench/shipbench-dbus
for f in "$shipd" "$bench" "$dbus_app"; do
    [[ -x $f ]] || { echo "run-bench: $f is missing: build it first" >&2; exit 2; }
done

source "$(dirname "$0")/common.sh"

# shipd's defaults (32 connections, 8 in handshake) are for a home; the bench wants room for BIG connections.
cat >"$work/shipd.conf" <<EOF
{ "max_connections": $((big + 1000)), "max_handshakes": 1024 }
EOF

# Starts shipd with state dir $work/state-$2 (default: its own, fresh); sets server_pid, port, ski, startup_ms (spawn → READY=1 received).
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
    server_pid=$!
    wait "$listener"
    local line
    line=$(cat "$ready")
    startup_ms=$(python3 -c "print(f'{($(cut -d' ' -f1 <<<"$line") - $t0) / 1e6:.1f}')")
    port=$(sed -E 's/.*Listening on port ([0-9]+).*/\1/' <<<"$line")
    ski=$(sed -E 's/.*as SKI ([0-9a-f]{40}).*/\1/' <<<"$line")
}

stop_shipd() {
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}


# The first start creates the certificate (ECDSA key, files written atomically); the restarts load it, as on
# every later boot.
startups=()
for i in 1 2 3 4; do
    start_shipd "s$i" s1
    startups+=("$startup_ms")
    sleep 0.3 # idle reading after it has settled
    idle_rss=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
    stop_shipd
done

start_shipd lat
"$bench" --port "$port" --ski "$ski" --connections 50 --concurrency 1 --pid "$server_pid" --json >"$work/c1.json" || true
"$bench" --port "$port" --ski "$ski" --connections 100 --concurrency 100 --pid "$server_pid" --json \
    >"$work/c100.json" || true
"$bench" --port "$port" --ski "$ski" --connections 500 --concurrency 16 --messages 20 --pid "$server_pid" --json \
    >"$work/rate.json" || true

# Data path through D-Bus, peer → shipd → app: 10 peers send DATA/10 SPINE messages each as fast as the
# socket takes them; the app counts DataReceived and takes the latency from the send stamp in msgCounter.
"$dbus_app" listen --bus-address "$bus_address" --count "$data" --deadline 120 --json \
    >"$work/to_app.json" 2>"$work/to_app.err" &
listen_pid=$!
for _ in $(seq 500); do grep -q listening "$work/to_app.err" 2>/dev/null && break; sleep 0.01; done
"$bench" --port "$port" --ski "$ski" --connections 10 --concurrency 10 --messages $((data / 10)) --json \
    >"$work/to_app_peers.json" || true
wait "$listen_pid" || true

# The same path paced (10 peers × 1 000 messages, one per ms each: 10 000/s): latency without a queue.
"$dbus_app" listen --bus-address "$bus_address" --count 10000 --deadline 120 --json \
    >"$work/to_app_paced.json" 2>"$work/to_app_paced.err" &
listen_pid=$!
for _ in $(seq 500); do grep -q listening "$work/to_app_paced.err" 2>/dev/null && break; sleep 0.01; done
"$bench" --port "$port" --ski "$ski" --connections 10 --concurrency 10 --messages 1000 --interval-us 1000 --json \
    >/dev/null || true
wait "$listen_pid" || true

# App → shipd → peer: 10 held peers; the app calls SendData round-robin with 64 calls awaiting replies; the
# peers take the one-way latency from the stamp.
"$bench" --port "$port" --ski "$ski" --connections 10 --concurrency 10 --hold --receive "$data" --deadline 120 \
    --json >"$work/to_peer.json" &
peers_pid=$!
"$dbus_app" send --bus-address "$bus_address" --count "$data" --peers 10 --window 64 --deadline 120 --json \
    >"$work/to_peer_app.json" || true
wait "$peers_pid" || true
# … and one call at a time (window 1): the latency of a single SendData to the peer.
"$bench" --port "$port" --ski "$ski" --connections 1 --hold --receive 2000 --deadline 120 \
    --json >"$work/to_peer_paced.json" &
peers_pid=$!
"$dbus_app" send --bus-address "$bus_address" --count 2000 --peers 1 --window 1 --deadline 120 --json \
    >/dev/null || true
wait "$peers_pid" || true
stop_shipd

start_shipd idle
"$bench" --port "$port" --ski "$ski" --connections "$idle" --concurrency 50 --hold --settle 1000 --idle 10 \
    --pid "$server_pid" --sigterm --deadline 300 --json >"$work/idle.json" || true
wait "$server_pid" 2>/dev/null || true
server_pid=""

# SIGTERM → exit with IDLE connections up and 100 dials in flight: the dials go to a tarpit that completes
# TCP (its backlog) but never speaks TLS, so each stays in its handshake until shipd stops.
python3 - "$work/tarpit.port" <<'EOF' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1024)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
time.sleep(600)
EOF
tarpit_pid=$!
for _ in $(seq 200); do [[ -s $work/tarpit.port ]] && break; sleep 0.01; done
tarpit_port=$(cat "$work/tarpit.port")
start_shipd term
for i in $(seq 100); do
    fake=$(printf '%040x' "$((0xd1a1000 + i))")
    busctl --address="$bus_address" call org.shipd.Hub1 /org/shipd/Hub1 org.shipd.Hub1 Trust s "$fake" >/dev/null
    busctl --address="$bus_address" call org.shipd.Hub1 /org/shipd/Hub1 org.shipd.Hub1 Connect ssq "$fake" \
        127.0.0.1 "$tarpit_port" >/dev/null || true
done
"$bench" --port "$port" --ski "$ski" --connections "$idle" --concurrency 50 --hold --settle 500 \
    --pid "$server_pid" --sigterm --deadline 300 --json >"$work/term.json" || true
wait "$server_pid" 2>/dev/null || true
server_pid=""
kill "$tarpit_pid" 2>/dev/null || true

# BIG idle connections (default 10 000): RSS per connection, then the daemon's CPU over 10 s of idling.
if ((big > 0)); then
    start_shipd big
    "$bench" --port "$port" --ski "$ski" --connections "$big" --concurrency 50 --hold --settle 2000 --idle 10 \
        --pid "$server_pid" --deadline 900 --json >"$work/big.json" || true
    stop_shipd
fi

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
printf '%-52s %s %%\n' "  daemon CPU while they idle (10 s)" "$(json "$work/idle.json" "d['idle_cpu_percent'] is not None and '%.2f' % d['idle_cpu_percent']")"
printf '%-52s %s\n' "SIGTERM → exit with those connections" "$(json "$work/idle.json" "d['sigterm_exit_ms'] and '%.1f ms' % d['sigterm_exit_ms']")"
printf '%-52s %s\n' "  … with 100 dials in flight too" "$(json "$work/term.json" "d['sigterm_exit_ms'] and '%.1f ms' % d['sigterm_exit_ms']")"
printf '%-52s %s\n' "peer → D-Bus app: DataReceived/s, p50/p99 latency" \
    "$(json "$work/to_app.json" "'%.0f /s, %.3f / %.3f ms (%d of %d)' % (d['per_s'], d['latency_ms']['p50'], d['latency_ms']['p99'], d['done'], d['count'])")"
printf '%-52s %s\n' "  paced 10 000/s: p50/p99/max latency" \
    "$(json "$work/to_app_paced.json" "'%.3f / %.3f / %.3f ms (%d of %d)' % (d['latency_ms']['p50'], d['latency_ms']['p99'], d['latency_ms']['max'], d['done'], d['count'])")"
printf '%-52s %s\n' "D-Bus app → peer: delivered/s, p50/p99 latency" \
    "$(json "$work/to_peer.json" "'%.0f /s, %.3f / %.3f ms (%d received)' % (d['received_per_s'], d['receive_ms']['p50'], d['receive_ms']['p99'], d['messages_received'])")"
printf '%-52s %s\n' "  SendData call → reply p50/p99" \
    "$(json "$work/to_peer_app.json" "'%.3f / %.3f ms, %d failed' % (d['latency_ms']['p50'], d['latency_ms']['p99'], d['failed'])")"
printf '%-52s %s\n' "  one call at a time: delivery p50/p99/max" \
    "$(json "$work/to_peer_paced.json" "'%.3f / %.3f / %.3f ms (%d received)' % (d['receive_ms']['p50'], d['receive_ms']['p99'], d['receive_ms']['max'], d['messages_received'])")"
if ((big > 0)); then
    printf '%-52s %s\n' "$big idle connections: held, failures" "$(json "$work/big.json" "d['completed'], d['failures']")"
    printf '%-52s %s\n' "  RSS per idle connection" "$(json "$work/big.json" "'%s KiB (%s → %s)' % (d['rss_per_connection_kib'] and round(d['rss_per_connection_kib'], 1), d['rss_before_kib'], d['rss_after_kib'])")"
    printf '%-52s %s %%\n' "  daemon CPU while they idle (10 s)" "$(json "$work/big.json" "d['idle_cpu_percent'] is not None and '%.2f' % d['idle_cpu_percent']")"
fi
echo "(raw JSON:)"
for f in c1 c100 rate to_app to_app_peers to_app_paced to_peer to_peer_app to_peer_paced idle term big; do
    [[ -f $work/$f.json ]] && { echo "== $f"; cat "$work/$f.json"; }
done
