#!/usr/bin/env bash
# The whole test suite, as CI runs it: a plain debug build, then ASan+UBSan over everything, TSan over the
# concurrency-relevant suites, a libFuzzer smoke, and the Debian package check. Each build has its own
# directory under build/.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
# Sanitized programs run several times slower: tests that bound a duration a user would notice (e.g. SIGTERM →
# exit within 1 s) multiply their bound by SHIPD_TEST_TIME_SCALE; the debug build keeps the real bound.
export SHIPD_TEST_TIME_SCALE=1
failed=0
passed=0
# How long each stage took, printed at the end (the CI budget is for the whole run).
timings=()
stage_name=""
stage_start=$SECONDS
stage() {
    [[ -n $stage_name ]] && timings+=("$stage_name $((SECONDS - stage_start)) s")
    stage_name=$1
    stage_start=$SECONDS
}

configure() { # dir, meson options...
    local dir=$1
    shift
    if [[ -f $dir/build.ninja ]]; then
        meson setup --reconfigure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@"
    fi
}

setup() { # dir, meson options...
    configure "$@"
    meson compile -C "$1"
}

run() { # dir, meson test args...
    local dir=$1 out rc=0
    shift
    out=$(mktemp)
    meson test -C "$dir" --print-errorlogs "$@" 2>&1 | tee "$out" || rc=$?
    # Count tests, not runs: meson's summary lines say how many passed and failed.
    local ok bad
    ok=$(awk '/^Ok:/ {print $2}' "$out" | tail -n1)
    bad=$(awk '/^(Fail|Timeout|Unexpected Pass):/ {n += $NF} END {print n + 0}' "$out")
    rm -f "$out"
    passed=$((passed + ${ok:-0}))
    failed=$((failed + bad))
    if ((rc != 0)); then
        ((bad > 0)) || failed=$((failed + 1))
        echo "tests: FAILED in $dir ($*)" >&2
    fi
}

stage debug
echo "== debug build"
setup build/debug
SHIPD_TEST_TIME_SCALE=1 run build/debug

stage asan
echo "== ASan + UBSan build"
setup build/asan -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp \
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
SHIPD_TEST_TIME_SCALE=3 \
    run build/asan

stage tsan
echo "== TSan build (concurrency-relevant suites: hub, util, net, every integration suite)"
tsan_suites=(hub util net integration)
# Only what those suites run is built (tests/suite_targets.py): the other unit tests need no TSan build.
configure build/tsan -Db_sanitize=thread -Db_lundef=false -Dbench=false
mapfile -t tsan_targets < <(python3 tests/suite_targets.py build/tsan "${tsan_suites[@]}")
ninja -C build/tsan "${tsan_targets[@]}"
# libdbus (under Avahi) has a lock-order report on reconnect that cannot deadlock; see the file.
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/integration/mdns/tsan.supp \
SHIPD_TEST_TIME_SCALE=5 \
    run build/tsan --no-rebuild "${tsan_suites[@]/#/--suite=}"

stage fuzz
echo "== libFuzzer smoke (clang, ASan+UBSan): every target briefly on its seeds and saved regressions"
fuzz_targets=(fuzz_eebus_json fuzz_frame_messages fuzz_connection fuzz_txt fuzz_config)
if [[ -f build/fuzz/build.ninja ]]; then
    meson setup --reconfigure build/fuzz >/dev/null
else
    CXX=clang++ meson setup build/fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false -Dbench=false
fi
meson compile -C build/fuzz "${fuzz_targets[@]}"
if bash tests/fuzz/run-smoke.sh build/fuzz "${FUZZ_SECONDS:-15}"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "tests: FAILED fuzz smoke" >&2
fi

stage package
echo "== Debian package: build, lintian, contents, unit checks, man pages"
if bash packaging/check-package.sh; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "tests: FAILED package check" >&2
fi

stage ""
echo "== $((SECONDS - start)) s (${timings[*]})"
echo "${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]
