#!/bin/bash
# Side by side (issue 14): the same shipbench load against shipd and against any other SHIP server, in one run,
# each figure on a freshly started server, so the README can give ratios measured in the same minute.
#
#   tests/bench/compare.sh BUILD_DIR [NAME 'COMMAND' ...]
#
# BUILD_DIR holds daemon/shipd and tests/bench/shipbench (release). Each NAME 'COMMAND' pair is another server:
# COMMAND runs it in the foreground on 127.0.0.1, "{dir}" in it becomes a fresh state directory for every
# run; it must print "SKI <40 hex>" and "PORT <n>" on stdout, accept every client certificate (auto-accept),
# and stop on SIGTERM. Builds nothing and fetches nothing. Environment: HELD (default 1000), BIG (10000; 0
# skips), KNOWN (10000 peers already trusted for shipd's "known peers" run; 0 skips).
# Starts and stops by PID everything it runs (a private dbus-daemon for shipd too); loopback only.
set -euo pipefail

build=$(realpath "${1:?usage: compare.sh BUILD_DIR [NAME 'COMMAND' ...]}")
shift
held=${HELD:-1000}
big=${BIG:-10000}
known=${KNOWN:-10000}
shipd=$build/daemon/shipd
bench=$build/tests/bench/shipbench
for f in "$shipd" "$bench"; do
    [[ -x $f ]] || { echo "compare: $f is missing: build it first" >&2; exit 2; }
done
names=(shipd)
commands=("")
while (($# >= 2)); do
    names+=("$1")
    commands+=("$2")
    shift 2
done

source "$(dirname "$0")/common.sh"
# shipd's defaults (32 connections, 8 in handshake) are for a home; ship-go has no such limits.
cat >"$work/shipd.conf" <<EOF
{ "max_connections": $((big + held + 1000)), "max_handshakes": 1024 }
EOF

# A state directory whose trust store already knows $1 peers (random SKIs, none of them will dial).
make_known_state() {
    local dir=$1 n=$2
    mkdir -p "$dir" && chmod 700 "$dir"
    python3 - "$dir/trust.json" "$n" <<'EOF'
import json, os, sys
peers = [{"ski": os.urandom(20).hex(), "shipId": "known-%d" % i} for i in range(int(sys.argv[2]))]
with open(sys.argv[1], "w") as f:
    json.dump({"version": 1, "peers": peers}, f)
os.chmod(sys.argv[1], 0o600)
EOF
}

# Starts server number $1 with a fresh state dir (or $2); sets server_pid, port, ski.
start_server() {
    local i=$1 state=${2:-$work/state-$RANDOM$RANDOM} out=$work/server.out
    mkdir -p "$state"
    rm -f "$out"
    if ((i == 0)); then
        "$shipd" --config "$work/shipd.conf" --state-dir "$state" --port 0 --no-mdns --auto-accept \
            --bus-address "$bus_address" --log-level warn --print-ski >"$out" 2>/dev/null
        ski=$(head -n1 "$out")
        "$shipd" --config "$work/shipd.conf" --state-dir "$state" --port 0 --no-mdns --auto-accept \
            --bus-address "$bus_address" --log-level info 2>"$work/server.log" &
        server_pid=$!
        for _ in $(seq 500); do grep -q "ready: SHIP ID" "$work/server.log" 2>/dev/null && break; sleep 0.01; done
        port=$(sed -nE 's/.*ready: .*listening on .*:([0-9]+).*/\1/p' "$work/server.log" | head -n1)
    else
        local cmd=${commands[$i]//\{dir\}/$state}
        bash -c "exec $cmd" >"$out" 2>"$work/server.log" &
        server_pid=$!
        for _ in $(seq 500); do grep -q '^PORT ' "$out" 2>/dev/null && break; sleep 0.01; done
        ski=$(sed -nE 's/^SKI ([0-9a-f]{40}).*/\1/p' "$out" | head -n1)
        port=$(sed -nE 's/^PORT ([0-9]+).*/\1/p' "$out" | head -n1)
    fi
    [[ -n $port && -n $ski ]] || { echo "compare: ${names[$i]} did not start" >&2; cat "$work/server.log" >&2; exit 1; }
}

stop_server() {
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# One figure set per server, each run on a fresh server, servers taking turns run by run.
runs=(rate latency held)
((big > 0)) && runs+=(big)
for run in "${runs[@]}"; do
    for i in "${!names[@]}"; do
        out=$work/$run-$i.json
        start_server "$i"
        case $run in
        rate) "$bench" --port "$port" --ski "$ski" --connections 400 --concurrency 16 --messages 20 \
            --pid "$server_pid" --json >"$out" || true ;;
        latency) "$bench" --port "$port" --ski "$ski" --connections 50 --concurrency 1 --pid "$server_pid" \
            --json >"$out" || true ;;
        held) "$bench" --port "$port" --ski "$ski" --connections "$held" --concurrency 32 --hold --settle 1000 \
            --idle 10 --progress 100 --pid "$server_pid" --deadline 300 --json >"$out" || true ;;
        big) "$bench" --port "$port" --ski "$ski" --connections "$big" --concurrency 32 --hold --settle 2000 \
            --idle 10 --progress 1000 --pid "$server_pid" --sigterm --deadline 900 --json >"$out" || true ;;
        esac
        stop_server
    done
done
if ((known > 0)); then
    make_known_state "$work/known" "$known"
    start_server 0 "$work/known"
    "$bench" --port "$port" --ski "$ski" --connections 400 --concurrency 16 --messages 20 --pid "$server_pid" \
        --json >"$work/known-0.json" || true
    stop_server
fi

# The table: one column per server, then each other server's figure as a ratio shipd ÷ it.
figure() { # label, run, python expression on d
    local label=$1 run=$2 expr=$3 row
    row=$(printf '%-58s' "$label")
    local values=()
    for i in "${!names[@]}"; do
        local v
        v=$(json "$work/$run-$i.json" "$expr" 2>/dev/null || echo "-")
        values+=("$v")
        row+=$(printf ' %14s' "$v")
    done
    for ((i = 1; i < ${#names[@]}; i++)); do
        row+=$(printf ' %10s' "$(python3 -c "
a, b = '${values[0]}', '${values[$i]}'
try: print('%.2f' % (float(a) / float(b)))
except Exception: print('-')")")
    done
    echo "$row"
}
echo "shipd side by side on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%FT%TZ)"
head=$(printf '%-58s' "figure")
for n in "${names[@]}"; do head+=$(printf ' %14s' "$n"); done
for ((i = 1; i < ${#names[@]}; i++)); do head+=$(printf ' %10s' "÷${names[$i]}"); done
echo "$head"
figure "daemon CPU ms per connection (400, 16 at a time, 20 msgs)" rate "'%.2f' % (1000 * d['cpu_s'] / d['completed'])"
figure "handshakes/s in that run" rate "'%.0f' % d['handshakes_per_s']"
figure "  failures" rate "sum(d['failures'].values())"
figure "handshake p50 ms, 50 one at a time" latency "'%.2f' % d['handshake_ms']['p50']"
figure "daemon CPU ms per handshake, $held held" held "'%.2f' % (1000 * d['cpu_s'] / d['completed'])"
figure "RSS KiB per held connection ($held)" held "'%.1f' % d['rss_per_connection_kib']"
figure "daemon CPU % while $held are held" held "'%.2f' % d['idle_cpu_percent']"
if ((big > 0)); then
    figure "daemon CPU ms per handshake, first 1000 of $big" big "'%.2f' % d['block_cpu_ms_per_handshake'][0]"
    figure "daemon CPU ms per handshake, last 1000 of $big" big "'%.2f' % d['block_cpu_ms_per_handshake'][-1]"
    figure "RSS KiB per held connection ($big)" big "'%.1f' % d['rss_per_connection_kib']"
    figure "daemon CPU % while $big are held" big "'%.2f' % d['idle_cpu_percent']"
    figure "SIGTERM → exit ms with $big held" big "'%.0f' % d['sigterm_exit_ms']"
    figure "  completed, failures" big "'%d/%d' % (d['completed'], sum(d['failures'].values()))"
fi
if ((known > 0)); then
    printf '%-58s %14s\n' "shipd: daemon CPU ms per connection, $known peers known" \
        "$(json "$work/known-0.json" "'%.2f' % (1000 * d['cpu_s'] / d['completed'])")"
fi
