#!/usr/bin/env bash
# How long `baton reload` takes (re-read and validate the service file and
# its policy, swap them in) against `baton status` (the same CLI start and
# control-socket round trip, no work), in the same run, on a running
# service with the example server.
#   bench/reload_bench.sh [ROUNDS]     (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
. bench/lib.sh
bench_build
W=$(mktemp -d /tmp/baton-reload-bench.XXXXXX)
BPID=""
cleanup() { kill_tree "$BPID"; rm -rf "$W"; }
trap cleanup EXIT
cat > "$W/svc.lua" <<LUA
return { name = "reload-bench", control = "$W/ctl.sock", listen = { http = "tcp://127.0.0.1:0" },
         command = { "$PWD/$B/examples/hello_server" }, policy = { "bluegreen", window = 5 } }
LUA
"$B/baton" run "$W/svc.lua" 2> "$W/sup.log" & BPID=$!
for _ in $(seq 1 100); do "$B/baton" status -s "$W/ctl.sock" > /dev/null 2>&1 && break; sleep 0.05; done
time_cmd() { # median microseconds of N runs of: baton $1
    for _ in $(seq 1 "$N"); do
        local a b
        a=$(date +%s%N)
        "$B/baton" "$1" -s "$W/ctl.sock" > /dev/null
        b=$(date +%s%N)
        echo $(( (b - a) / 1000 ))
    done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
status_us=$(time_cmd status)
reload_us=$(time_cmd reload)
# The supervisor's own figure: from reading the file to the new policy in place.
inside=$(sed -n 's/.*baton reload: reloaded .* in \([0-9.]*\) ms$/\1/p' "$W/sup.log" | sort -n |
    awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "baton reload, $N rounds (policy: bluegreen), medians"
echo "  inside the supervisor (load, validate, swap)   ${inside} ms"
echo "  as a script sees it: baton reload              $(awk -v u="$reload_us" 'BEGIN {printf "%.2f", u/1000}') ms"
echo "  baseline, same run: baton status               $(awk -v u="$status_us" 'BEGIN {printf "%.2f", u/1000}') ms (CLI start + socket round trip)"
echo "  ratio reload / status: $(awk -v a="$reload_us" -v b="$status_us" 'BEGIN {printf "%.2f", a/b}')"
