#!/usr/bin/env bash
# The whole test suite, as CI runs it: a plain debug build, then ASan+UBSan over everything, then TSan
# over the concurrency-relevant suites. Each build has its own directory under build/.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
failed=0
passed=0

setup() { # dir, meson options...
    local dir=$1
    shift
    if [[ -f $dir/build.ninja ]]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@"
    fi
    meson compile -C "$dir"
}

run() { # dir, meson test args...
    local dir=$1
    shift
    if meson test -C "$dir" --print-errorlogs "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "tests: FAILED in $dir ($*)" >&2
    fi
}

echo "== debug build"
setup build/debug
run build/debug

echo "== ASan + UBSan build"
setup build/asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    run build/asan

echo "== TSan build (concurrency-relevant suites)"
setup build/tsan -Db_sanitize=thread -Db_lundef=false -Dbench=false
# libdbus (under Avahi) has a lock-order report on reconnect that cannot deadlock; see the file.
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/integration/mdns/tsan.supp \
    run build/tsan --no-suite ship --no-suite tls

echo "== $((SECONDS - start)) s"
echo "suites: ${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]
