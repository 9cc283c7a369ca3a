# Sourced by run-bench.sh and compare.sh: the scratch directory, a private dbus-daemon, cleanup by PID, and a
# JSON field reader. Sets work, bus_pid, bus_address; `server_pid` (set by the caller) is killed on exit too.
work=$(mktemp -d /tmp/shipbench.XXXXXX)
bus_pid=""
server_pid=""
bench_cleanup() {
    [[ -n $server_pid ]] && kill -KILL "$server_pid" 2>/dev/null || true
    [[ -n $bus_pid ]] && kill "$bus_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap bench_cleanup EXIT

# Every connection is one socket on each side, plus the daemon's own: ask for the hard limit.
ulimit -n "$(ulimit -Hn)" || true

dbus-daemon --session --nofork --address="unix:path=$work/bus" --print-address=3 3>"$work/bus.address" 2>/dev/null &
bus_pid=$!
for _ in $(seq 100); do [[ -s $work/bus.address ]] && break; sleep 0.05; done
bus_address=$(head -n1 "$work/bus.address")

json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
