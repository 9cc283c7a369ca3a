#!/usr/bin/env bash
# Two mDNS hosts on one link, inside network namespaces this script creates and removes: host "a" and host "b",
# joined by a veth pair (169.254.77.1/24 on veth-a, 169.254.77.2/24 on veth-b), each with its own system-type
# dbus-daemon and its own avahi-daemon. Nothing touches the machine's real network, bus or avahi.
#
# Use it in one of two ways:
#   source netns-harness.sh; netns_setup || exit $?; netns_exec a CMD...; netns_avahi_restart b; ...
#       (netns_setup installs an EXIT trap that calls netns_teardown)
#   netns-harness.sh --run 'CMD_A' 'CMD_B'
#       runs both shell commands at once, CMD_A in host a and CMD_B in host b; exit status 0 only if both
#       succeed. Each command sees NETNS_SELF (a|b), NETNS_IF, NETNS_SELF_IP, NETNS_PEER_IP and
#       DBUS_SYSTEM_BUS_ADDRESS (the host's private bus, which the Avahi client library honours).
#
# Exit status 77 (meson: skipped) when namespaces cannot be created here (not root, no CAP_NET_ADMIN).
# Every process is started and killed by PID; namespace names carry the PID so parallel runs do not collide.

NETNS_SKIP=77
NETNS_TAG="shipmdns-$$"
NETNS_A="${NETNS_TAG}-a"
NETNS_B="${NETNS_TAG}-b"
NETNS_IF_a=veth-a
NETNS_IF_b=veth-b
NETNS_IP_a=169.254.77.1
NETNS_IP_b=169.254.77.2
NETNS_DIR=""
declare -A NETNS_DBUS_PID=() NETNS_AVAHI_PID=() NETNS_CREATED=()

netns_log() { echo "netns-harness: $*" >&2; }

netns_name() { # a|b
    case $1 in
    a) echo "$NETNS_A" ;;
    b) echo "$NETNS_B" ;;
    *)
        netns_log "unknown host '$1' (want a or b)"
        return 1
        ;;
    esac
}

netns_bus() { echo "unix:path=$NETNS_DIR/$1/bus"; }

# NETNS_ARGV := the command prefix that runs something inside host a or b with that host's system bus.
netns_argv() { # a|b
    local host=$1 ns peer
    ns=$(netns_name "$host") || return 1
    local ip_var="NETNS_IP_$host" if_var="NETNS_IF_$host"
    [[ $host == a ]] && peer=$NETNS_IP_b || peer=$NETNS_IP_a
    NETNS_ARGV=(ip netns exec "$ns" env "DBUS_SYSTEM_BUS_ADDRESS=$(netns_bus "$host")" "NETNS_SELF=$host"
        "NETNS_IF=${!if_var}" "NETNS_SELF_IP=${!ip_var}" "NETNS_PEER_IP=$peer")
}

# Runs CMD inside host a or b and waits for it.
netns_exec() { # a|b CMD...
    netns_argv "$1" || return 1
    shift
    "${NETNS_ARGV[@]}" "$@"
}

# Starts CMD inside host a or b in the background, stdout and stderr appended to OUTFILE, stdin the caller's
# (e.g. `netns_spawn a out cmd <&"$fd"`); NETNS_PID := its PID (ip and env exec, so it is CMD's own PID).
netns_spawn() { # a|b OUTFILE CMD...
    netns_argv "$1" || return 1
    local out=$2
    shift 2
    # The explicit <&0 keeps bash from giving a background job /dev/null as stdin.
    "${NETNS_ARGV[@]}" "$@" <&0 >>"$out" 2>&1 &
    NETNS_PID=$!
}

# Waits up to SECONDS for CMD to succeed, trying every 0.1 s; the deadline is what bounds it.
netns_wait_until() { # SECONDS CMD...
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# Waits until FILE holds a line exactly equal to LINE.
netns_wait_line() { # FILE LINE SECONDS
    netns_wait_until "$3" grep -qxF -- "$2" "$1"
}

netns_can_run() {
    if [[ $EUID -ne 0 ]]; then
        netns_log "SKIP: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces"
        return 1
    fi
    local tool
    for tool in ip unshare dbus-daemon dbus-send avahi-daemon; do
        if ! command -v "$tool" >/dev/null; then
            netns_log "SKIP: '$tool' is not installed"
            return 1
        fi
    done
    if ! ip netns add "${NETNS_TAG}-probe" 2>/dev/null; then
        netns_log "SKIP: cannot create a network namespace here (no CAP_NET_ADMIN?)"
        return 1
    fi
    ip netns delete "${NETNS_TAG}-probe"
}

netns_write_configs() { # a|b
    local host=$1 dir="$NETNS_DIR/$1" if_var="NETNS_IF_$1"
    mkdir -p "$dir"
    cat >"$dir/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$dir/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
EOF
    cat >"$dir/avahi-daemon.conf" <<EOF
[server]
host-name=ship-netns-$host
use-ipv4=yes
use-ipv6=yes
allow-interfaces=${!if_var}
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-addresses=yes
[reflector]
enable-reflector=no
EOF
}

netns_avahi_running() { # a|b
    local state
    state=$(DBUS_SYSTEM_BUS_ADDRESS=$(netns_bus "$1") dbus-send --system --print-reply=literal \
        --dest=org.freedesktop.Avahi / org.freedesktop.Avahi.Server.GetState 2>/dev/null) || return 1
    [[ $state == *"int32 2"* ]] # AVAHI_SERVER_RUNNING
}

# Each avahi-daemon gets a private tmpfs on /run (its pid file and socket live in /run/avahi-daemon), so the
# two instances, and any on the machine itself, never see each other's files.
netns_avahi_start() { # a|b
    local host=$1 dir="$NETNS_DIR/$1"
    # shellcheck disable=SC2016 # $1 is expanded by the inner sh
    netns_spawn "$host" "$dir/avahi.log" unshare -m --propagation private sh -c \
        'mount -t tmpfs tmpfs /run && mkdir /run/avahi-daemon &&
         exec avahi-daemon -f "$1" --no-drop-root --no-chroot --no-rlimits' \
        sh "$dir/avahi-daemon.conf" || return 1
    NETNS_AVAHI_PID[$host]=$NETNS_PID
}

netns_avahi_wait() { # a|b [SECONDS]
    if ! netns_wait_until "${2:-10}" netns_avahi_running "$1"; then
        netns_log "avahi-daemon in host $1 did not reach the running state; its log:"
        cat "$NETNS_DIR/$1/avahi.log" >&2
        return 1
    fi
}

netns_exited() { ! kill -0 "$1" 2>/dev/null; }

netns_kill() { # PID: TERM, then KILL if it lingers beyond 5 s
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || return 0
    netns_wait_until 5 netns_exited "$pid" || kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

netns_avahi_stop() { # a|b
    local pid=${NETNS_AVAHI_PID[$1]:-}
    [[ -n $pid ]] && netns_kill "$pid"
    NETNS_AVAHI_PID[$1]=""
}

netns_avahi_restart() { # a|b
    netns_avahi_stop "$1"
    netns_avahi_start "$1"
    netns_avahi_wait "$1"
}

# Prints host a's or b's IPv6 link-local address on its veth (no zone), nothing where the kernel gives the
# namespaces no IPv6.
netns_link_local() { # a|b
    local ns if_var="NETNS_IF_$1"
    ns=$(netns_name "$1") || return 1
    ip -n "$ns" -6 -o addr show dev "${!if_var}" scope link | awk '{ split($4, a, "/"); print a[1]; exit }'
}

# Takes host a's or b's IPv4 address off its veth, leaving IPv6 link-local only. Restart its avahi-daemon
# afterwards if peers must not remember the old address.
netns_drop_ipv4() { # a|b
    local ns ip_var="NETNS_IP_$1" if_var="NETNS_IF_$1"
    ns=$(netns_name "$1") || return 1
    ip -n "$ns" addr del "${!ip_var}/24" dev "${!if_var}"
}

netns_setup() {
    netns_can_run || return $NETNS_SKIP
    NETNS_DIR=$(mktemp -d "/tmp/${NETNS_TAG}.XXXXXX")
    trap netns_teardown EXIT
    trap 'exit 130' INT TERM
    local host
    ip netns add "$NETNS_A" && NETNS_CREATED[a]=1 || return 1
    ip netns add "$NETNS_B" && NETNS_CREATED[b]=1 || return 1
    ip link add "$NETNS_IF_a" netns "$NETNS_A" type veth peer name "$NETNS_IF_b" netns "$NETNS_B" || return 1
    for host in a b; do
        local ns ip_var="NETNS_IP_$host" if_var="NETNS_IF_$host"
        ns=$(netns_name $host)
        ip -n "$ns" link set lo up || return 1
        ip -n "$ns" link set "${!if_var}" multicast on up || return 1
        ip -n "$ns" addr add "${!ip_var}/24" dev "${!if_var}" || return 1
        netns_write_configs $host
        netns_spawn $host "$NETNS_DIR/$host/dbus.log" dbus-daemon --config-file="$NETNS_DIR/$host/bus.conf" \
            --nofork --nopidfile || return 1
        NETNS_DBUS_PID[$host]=$NETNS_PID
    done
    for host in a b; do
        if ! netns_wait_until 10 test -S "$NETNS_DIR/$host/bus"; then
            netns_log "dbus-daemon in host $host did not start"
            return 1
        fi
        netns_avahi_start $host
    done
    netns_avahi_wait a && netns_avahi_wait b
}

netns_teardown() {
    local host
    for host in a b; do
        netns_avahi_stop $host
        [[ -n ${NETNS_DBUS_PID[$host]:-} ]] && netns_kill "${NETNS_DBUS_PID[$host]}"
        NETNS_DBUS_PID[$host]=""
    done
    [[ -n ${NETNS_CREATED[a]:-} ]] && ip netns delete "$NETNS_A" 2>/dev/null
    [[ -n ${NETNS_CREATED[b]:-} ]] && ip netns delete "$NETNS_B" 2>/dev/null
    NETNS_CREATED=()
    if [[ -n $NETNS_DIR && -d $NETNS_DIR ]]; then
        if [[ -n ${NETNS_KEEP_LOGS:-} ]]; then
            netns_log "logs kept in $NETNS_DIR"
        else
            rm -rf "$NETNS_DIR"
        fi
    fi
    NETNS_DIR=""
}

netns_main() {
    if [[ ${1:-} != --run || $# -ne 3 ]]; then
        echo "usage: $0 --run 'CMD_A' 'CMD_B'" >&2
        return 2
    fi
    local rc
    netns_setup
    rc=$?
    ((rc == 0)) || return $rc
    local pid_a pid_b rc_a rc_b
    netns_argv a && "${NETNS_ARGV[@]}" bash -c "$2" &
    pid_a=$!
    netns_argv b && "${NETNS_ARGV[@]}" bash -c "$3" &
    pid_b=$!
    wait "$pid_a"
    rc_a=$?
    wait "$pid_b"
    rc_b=$?
    netns_log "host a exited $rc_a, host b exited $rc_b"
    ((rc_a == 0 && rc_b == 0))
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    netns_main "$@"
    exit $?
fi
