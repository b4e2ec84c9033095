#!/usr/bin/env bash
# The control socket's answer time while a state blob is verified, against
# its answer time idle, in the same run. A real restart under the handover
# policy hands a SIZE-byte blob (bench/state_bench --app) to the next
# generation; the supervisor checks its checksum on libuv's thread pool, so
# `baton status` should answer as fast during the check as when idle. A
# client asks for status every 2 ms throughout (no process start per
# call); the figures are its answer times idle (3 s before the restart)
# and while the restart with its check is under way.
#   bench/verify_answer.sh [SIZE]     (default 1G)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1G}
. bench/lib.sh
bench_build
W=$(mktemp -d /tmp/baton-verify.XXXXXX)
BPID="" PPID_POLL=""
cleanup() { kill_tree "$PPID_POLL" "$BPID"; rm -rf "$W"; }
trap cleanup EXIT
cat > "$W/svc.lua" <<LUA
return { name = "verify-answer", control = "$W/ctl.sock",
         command = { "$PWD/$B/bench/state_bench", "--app", "$SIZE" },
         state = { version = 1, max_size = "4G" }, ready_timeout = 60,
         policy = { "handover", checkpoint_timeout = 60 } }
LUA
"$B/baton" run "$W/svc.lua" 2> "$W/sup.log" & BPID=$!
answers() { "$B/baton" status -s "$W/ctl.sock" > /dev/null 2>&1; }
wait_until 10 answers

python3 scripts/status_poll.py "$W/ctl.sock" "$W/stop" --samples > "$W/samples" &
PPID_POLL=$!
sleep 3
t0=$(python3 -c 'import time; print(f"{time.monotonic():.6f}")')
"$B/baton" restart -s "$W/ctl.sock" > "$W/restart.out"
t1=$(python3 -c 'import time; print(f"{time.monotonic():.6f}")')
sleep 0.5
touch "$W/stop"
wait "$PPID_POLL" || true
PPID_POLL=""

stats() { # stats FROM TO: p50 p99 max count of the answer times in [FROM, TO)
    awk -v a="$1" -v b="$2" '$1 >= a && $1 < b { print $2 }' "$W/samples" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR == 0) { print "0 0 0 0"; exit }
             printf "%.2f %.2f %.2f %d\n", v[int((NR + 1) / 2)], v[int(NR * 0.99 + 0.999)], v[NR], NR }'
}
read -r ip50 ip99 imax in < <(stats 0 "$t0")
read -r dp50 dp99 dmax dn < <(stats "$t0" "$t1")
checked=$(grep -o 'checked in [0-9.]* ms[^)]*' "$W/sup.log" | head -1 || true)
echo "restart with a $SIZE state blob: $(cat "$W/restart.out"); $checked"
printf '%-28s %8s %8s %8s %7s\n' "baton status answer (ms)" p50 p99 max answers
printf '%-28s %8s %8s %8s %7s\n' "idle" "$ip50" "$ip99" "$imax" "$in"
printf '%-28s %8s %8s %8s %7s\n' "during the restart" "$dp50" "$dp99" "$dmax" "$dn"
awk -v a="$dp99" -v b="$ip99" -v c="$dmax" -v d="$imax" 'BEGIN {
    printf "ratio during / idle          p99 %.2f, max %.2f\n", (b > 0 ? a / b : 0), (d > 0 ? c / d : 0) }'
"$B/baton" stop -s "$W/ctl.sock" > /dev/null
wait "$BPID" || true
BPID=""
