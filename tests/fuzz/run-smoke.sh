#!/usr/bin/env bash
# Short bounded fuzzing of every target of a -Dfuzz=true build, each on a fresh copy of its seed corpus and
# saved regressions, then one table: target, runs, seconds, crashes. Exits non-zero on any crash, leak,
# timeout, out-of-memory or broken invariant. Everything it writes stays under BUILD_DIR/tests/fuzz/smoke.
#
#   tests/fuzz/run-smoke.sh BUILD_DIR [SECONDS_PER_TARGET (20)] [MAX_RUNS_PER_TARGET (200000)]
set -euo pipefail

usage="usage: $0 BUILD_DIR [SECONDS_PER_TARGET] [MAX_RUNS_PER_TARGET]"
build=${1:?$usage}
seconds=${2:-20}
max_runs=${3:-200000}
here=$(cd "$(dirname "$0")" && pwd)
targets=(eebus_json frame_messages connection txt config)

bin=$build
[[ -d $build/tests/fuzz ]] && bin=$build/tests/fuzz
for t in "${targets[@]}"; do
    if [[ ! -x $bin/fuzz_$t ]]; then
        echo "$0: $bin/fuzz_$t missing: configure with -Dfuzz=true and run meson compile -C $build" >&2
        exit 2
    fi
done
bin=$(cd "$bin" && pwd)
work=$bin/smoke
rm -rf "$work"
mkdir -p "$work"

# Same settings as a long run by hand (README.md): leaks are errors, UB halts, RapidJSON's known
# header-only report is suppressed.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:suppressions=$here/ubsan.supp}

failed=0
rows=()
for t in "${targets[@]}"; do
    dir=$work/$t
    mkdir -p "$dir/corpus" "$dir/artifacts"
    cp "$here/corpus/$t/"* "$dir/corpus/"
    if [[ -d $here/regressions/$t ]]; then cp "$here/regressions/$t/"* "$dir/corpus/" 2>/dev/null || true; fi
    start=$(date +%s.%N)
    rc=0
    "$bin/fuzz_$t" "$dir/corpus" -dict="$here/ship.dict" -max_total_time="$seconds" -runs="$max_runs" \
        -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix="$dir/artifacts/" \
        >"$dir/log" 2>&1 || rc=$?
    end=$(date +%s.%N)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -n 1)
    # libFuzzer names what it saves by kind; slow-unit-* files are reports, not failures.
    crashes=$(find "$dir/artifacts" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
        -o -name 'oom-*' \) | wc -l)
    if ((rc != 0)) && ((crashes == 0)); then crashes=1; fi
    rows+=("$(printf '%-16s %10s %8.1f %8d' "$t" "${runs:-?}" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$crashes")")
    if ((crashes != 0)); then
        failed=1
        echo "== $t: exit $rc; artifacts in $dir/artifacts; log $dir/log" >&2
        grep -E -m 12 '^  [^ ]|ERROR|invariant|SUMMARY|runtime error' "$dir/log" >&2 || true
    fi
done

printf '%-16s %10s %8s %8s\n' target runs seconds crashes
printf '%s\n' "${rows[@]}"
exit $failed
