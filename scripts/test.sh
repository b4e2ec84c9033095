#!/usr/bin/env bash
# Lints, builds baton and runs every test: once normally, once under
# AddressSanitizer and UndefinedBehaviorSanitizer. Installs what is missing
# first.
#   scripts/test.sh            both builds
#   scripts/test.sh --quick    the normal build only
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh test

# The habits the code keeps: formatting, luacheck, cppcheck, no include
# cycles in src/ (scripts/lint.sh says what to mend).
echo "=== lint ==="
scripts/lint.sh

# The portable sources (all but src/os/linux*.c) against FreeBSD 12.1's
# headers, with clang, where ../shared/sysroots (or BATON_FREEBSD_SYSROOT)
# holds them; it says plainly when it skips.
echo "=== FreeBSD syntax check ==="
scripts/check_freebsd.sh

# The parsers of what comes from outside (notify datagrams, control
# requests, state blobs, addresses, service files), fuzzed for a bounded
# time each (clang's libFuzzer; scripts/fuzz.sh installs it).
echo "=== fuzz ==="
scripts/fuzz.sh "${FUZZ_SECONDS:-15}"

run_suite() { # run_suite BUILD_DIR CTEST_ARGS CMAKE_ARGS...
    local dir=$1 ctest_args=$2
    shift 2
    mkdir -p "$dir"
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=ON "$@" > "$dir/cmake.log" 2>&1 ||
        { cat "$dir/cmake.log"; return 1; }
    cmake --build "$dir" -j"$(nproc)"
    # The tests run side by side (none shares a port or a file: see
    # tests/CMakeLists.txt), as many at once as there are cores, or
    # CTEST_JOBS.
    # shellcheck disable=SC2086 # CTEST_ARGS: words
    (cd "$dir" && ctest --output-on-failure --timeout 300 -j"${CTEST_JOBS:-$(nproc)}" $ctest_args)
}

echo "=== build and test ==="
# The e2e tests under older kernels' profiles (label kernel: tests/kernel/)
# run once, in the sanitized build, where the fallbacks they take are
# checked for memory errors too; the normal build runs the rest. --quick
# runs them in the normal build, as it runs no other.
if [ "${1:-}" = "--quick" ]; then
    run_suite build ""
else
    run_suite build "-LE kernel"
fi
if [ "${1:-}" != "--quick" ]; then
    echo "=== build and test under ASan + UBSan ==="
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_suite build-asan "" -DBATON_SANITIZE=ON
fi
