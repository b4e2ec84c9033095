#!/usr/bin/env bash
# Runs each libFuzzer harness of tests/fuzz for a bounded time on a copy of
# its seed corpus (tests/fuzz/corpus/NAME), built with clang in build-fuzz
# (ASan + UBSan, coverage). Installs clang and its fuzzer runtime first.
# As many harnesses run at once as there are cores. Fails when a harness
# finds a crash, a leak or undefined behaviour, and says where the input
# that does it was written.
#   scripts/fuzz.sh [SECONDS] [NAME ...]   (default 15 s each; all five)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-15}
[ $# -gt 0 ] && shift
NAMES=("$@")
[ ${#NAMES[@]} -gt 0 ] || NAMES=(notify control state_blob address config)
case "$SECONDS_EACH" in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [NAME ...]" >&2; exit 2 ;; esac

scripts/deps.sh fuzz
mkdir -p build-fuzz
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DBATON_FUZZ=ON -DBUILD_TESTING=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo > build-fuzz/cmake.log 2>&1 || { cat build-fuzz/cmake.log; exit 1; }
cmake --build build-fuzz -j"$(nproc)" --target $(printf 'fuzz_%s ' "${NAMES[@]}") > build-fuzz/build.log 2>&1 ||
    { tail -40 build-fuzz/build.log; exit 1; }

W=$(mktemp -d /tmp/baton-fuzz.XXXXXX)
trap 'rm -rf "$W"' EXIT
# One harness: fuzzes NAME for SECONDS_EACH into $W/NAME, its exit code in
# $W/NAME/rc. As many run at once as there are cores.
fuzz_one() {
    local name=$1 rc=0
    mkdir -p "$W/$name/corpus" "$W/$name/crash"
    cp tests/fuzz/corpus/"$name"/* "$W/$name/corpus/"
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "build-fuzz/tests/fuzz/fuzz_$name" -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        -artifact_prefix="$W/$name/crash/" -timeout=10 -rss_limit_mb=2048 \
        "$W/$name/corpus" > "$W/$name/log" 2>&1 || rc=$?
    echo "$rc" > "$W/$name/rc"
}
for name in "${NAMES[@]}"; do
    [ -d "tests/fuzz/corpus/$name" ] || { echo "fuzz: no harness '$name'" >&2; exit 2; }
done
jobs_max=$(nproc)
for name in "${NAMES[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done
    fuzz_one "$name" &
done
wait
failed=0
printf '%-12s %12s %10s %8s\n' harness executions "per second" corpus
for name in "${NAMES[@]}"; do
    rc=$(cat "$W/$name/rc")
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$W/$name/log")
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$W/$name/log")
    printf '%-12s %12s %10s %8s\n' "$name" "${runs:-?}" "$(( ${runs:-0} / ${secs:-1} ))" \
        "$(ls "$W/$name/corpus" | wc -l)"
    if [ "$rc" -ne 0 ]; then
        failed=1
        mkdir -p build-fuzz/crashes
        cp "$W/$name/crash/"* build-fuzz/crashes/ 2>/dev/null || true
        echo "fuzz: $name failed (exit $rc); the input is in build-fuzz/crashes/:" >&2
        grep -E "ERROR|SUMMARY|runtime error" "$W/$name/log" | head -5 >&2
    fi
done
[ $failed -eq 0 ] && echo "fuzz: ok (${#NAMES[@]} harnesses, ${SECONDS_EACH}s each)"
exit $failed
