#!/usr/bin/env bash
# Runs the whole suite the way `make test` does and ends with one summary line
# ("N passed, M failed") across the normal build, the ASan/UBSan build and the fuzz smoke runs.
# Usage: tests/run-suite.sh BUILD_DIR ASAN_BUILD_DIR FUZZ_BUILD_DIR FUZZ_SECONDS
set -uo pipefail
build=$1 asan=$2 fuzz=$3 fuzz_seconds=$4
passed=0 failed=0

run_ctest() { # dir label [env...]
    local dir=$1 label=$2; shift 2
    local log="$dir/ctest-suite.log"
    echo "== ctest ($label)"
    (cd "$dir" && env "$@" ctest --output-on-failure -j1) 2>&1 | tee "$log"
    local line total nfail
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "ctest ($label) did not finish"; failed=$((failed + 1)); return
    fi
    nfail=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
    passed=$((passed + total - nfail)); failed=$((failed + nfail))
}

run_ctest "$build" "RelWithDebInfo"
run_ctest "$asan" "ASan+UBSan" ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

# A short run of every fuzz target over its committed seeds.
for f in "$fuzz"/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f")
    mkdir -p "$fuzz/corpus/$name"
    echo "== fuzz smoke: $name (${fuzz_seconds}s)"
    if "$f" -max_total_time="$fuzz_seconds" -print_final_stats=1 "$fuzz/corpus/$name" "tests/fuzz/corpus/$name" >"$fuzz/$name.log" 2>&1; then
        grep -E 'stat::number_of_executed_units' "$fuzz/$name.log" || true
        passed=$((passed + 1))
    else
        tail -40 "$fuzz/$name.log"; failed=$((failed + 1))
    fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
