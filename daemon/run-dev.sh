#!/usr/bin/env bash
# Builds shipd and runs it in the foreground with an embedded default: state (certificate, trust) under
# .state/ in the checkout and a private D-Bus daemon of its own, so nothing on the machine is touched.
# Ctrl-C stops shipd, then the bus this script started.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -f build/debug/build.ninja ]]; then meson setup --reconfigure build/debug >/dev/null; else meson setup build/debug; fi
# Only what this script runs (and shipctl to talk to it), not the whole test suite.
meson compile -C build/debug daemon/shipd daemon/shipctl/shipctl

state=$PWD/.state
mkdir -p "$state"
chmod 700 "$state"
rm -f "$state/bus"
dbus-daemon --session --nofork --print-address=1 --address="unix:path=$state/bus" >"$state/bus.address" &
bus_pid=$!
trap 'kill "$bus_pid" 2>/dev/null; wait "$bus_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -s $state/bus.address ]] && break; sleep 0.05; done
bus=$(head -n1 "$state/bus.address")

echo "run-dev: private bus $bus"
echo "run-dev: try  build/debug/daemon/shipctl/shipctl --bus-address unix:path=$state/bus status"
echo "run-dev:  or  busctl --address=unix:path=$state/bus tree org.shipd.Hub1"
build/debug/daemon/shipd --state-dir "$state" --bus-address "$bus" --log-level debug "$@" || rc=$?
exit "${rc:-0}"
