#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD_DIR (a -Dfuzz=true build) once on each saved input of SOURCE_DIR (tests/fuzz): the
# regressions/<target>/ files and the corpus/<target>/ seeds. No fuzzing; any crash, leak or broken
# invariant fails.
set -euo pipefail
build=${1:?usage: replay-regressions.sh BUILD_DIR SOURCE_DIR}
source=${2:?usage: replay-regressions.sh BUILD_DIR SOURCE_DIR}
# Either the build root or its tests/fuzz directory (meson passes the latter).
[[ -d $build/tests/fuzz ]] && build=$build/tests/fuzz
failed=0
for target in eebus_json frame_messages connection txt config; do
    inputs=()
    for dir in "$source/regressions/$target" "$source/corpus/$target"; do
        [[ -d $dir ]] || continue
        while IFS= read -r -d '' file; do inputs+=("$file"); done < <(find "$dir" -type f -print0 | sort -z)
    done
    if ((${#inputs[@]} == 0)); then
        echo "$target: no inputs"
        failed=1
        continue
    fi
    if "$build/fuzz_$target" "${inputs[@]}" >"$build/replay-$target.log" 2>&1; then
        echo "$target: ${#inputs[@]} inputs replayed"
    else
        echo "$target: FAILED (see $build/replay-$target.log)"
        tail -n 30 "$build/replay-$target.log"
        failed=1
    fi
done
exit $failed
