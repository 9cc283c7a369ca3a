#!/usr/bin/env bash
# Installs the Debian 12 packages that building, running and testing shipd need.
# Idempotent: installs only what is missing (after `apt-get update`); must run as root when something is.
set -euo pipefail

pkgs=(
    # build
    meson ninja-build g++ pkg-config
    libsdbus-c++-dev libsdbus-c++-bin libwebsockets-dev libssl-dev libavahi-client-dev
    # the one event loop: libev (epoll), and libwebsockets' plugin that runs lws on it
    libev-dev libwebsockets-evlib-ev
    rapidjson-dev libspdlog-dev catch2 libsystemd-dev
    # man pages (scdoc sources, built by meson)
    scdoc man-db groff-base
    # run and test: private buses, mDNS in network namespaces, TLS probes, D-Bus policy checks (gdbus)
    dbus avahi-daemon avahi-utils iproute2 openssl util-linux procps coreutils libglib2.0-bin
    # fuzzing (libFuzzer) and sanitizer runtimes
    clang libclang-rt-14-dev
    # the Debian package check (packaging/check-package.sh)
    build-essential debhelper dpkg-dev fakeroot lintian systemd
    # the benchmark script's timing and JSON helpers (tests/bench/run-bench.sh)
    python3
    # authorization: shipd asks polkitd per action; the tests run a real one on a private bus
    polkitd
    # the Python example app (dbus/examples/energy_manager.py) and its test
    python3-dbus-next
)

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "bootstrap: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# Installing daemons (dbus, avahi-daemon) must not start them here: tests start their own, by PID.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
fi
trap '[[ $made_policy == 1 ]] && rm -f "$policy"' EXIT
apt-get install -y -q --no-install-recommends "${missing[@]}"
