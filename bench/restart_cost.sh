#!/usr/bin/env bash
# What a restart costs the supervisor, from the first restart to the Nth:
# its CPU (utime + stime from /proc/PID/stat) per restart over restarts
# 1-100 and over the last 100 of N, and its resident memory at both,
# against a `baton status` round trip measured in the same run (the
# supervisor's CPU per status answer, over 200 of them). Goal (issue 25):
# flat, the last 100 within the first 100's noise, memory flat.
#
#   bench/restart_cost.sh [N]     (default N=2000; 10,000 takes ~15 min here)
#
# The app is examples/hello; restarts are asked one after the other, each
# once the one before took over (`baton restart` returns), no load.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000}
[ "$N" -ge 200 ] || { echo "restart_cost: N must be at least 200" >&2; exit 2; }
. bench/lib.sh
bench_build bench
W=$(mktemp -d /tmp/baton-rcost.XXXXXX)
SUP=""
cleanup() { kill_tree "$SUP"; rm -rf "$W"; }
trap cleanup EXIT
export XDG_RUNTIME_DIR="$W/run" # the carry file and the keeper: as in production
mkdir -m 700 "$XDG_RUNTIME_DIR"
cat > "$W/svc.lua" <<LUA
return { name = "rcost", control = "$W/ctl.sock", listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" }, ready_timeout = 10, drain_timeout = 10 }
LUA
"$BATON" run "$W/svc.lua" 2> "$W/sup.log" & SUP=$!
has_active() { "$BATON" status -s "$W/ctl.sock" 2>/dev/null | grep -q ' active '; }
wait_until 30 has_active
us_of() { # PID: utime + stime in microseconds
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%d\n", ($12 + $13) * 1000000 / hz }' "/proc/$1/stat"
}
restarts() { # COUNT
    local i
    for i in $(seq 1 "$1"); do "$BATON" restart -s "$W/ctl.sock" > /dev/null; done
}
# status round trip: the supervisor's CPU per answer, and the wall time.
c0=$(us_of "$SUP"); t0=$(now_us)
for _ in $(seq 1 200); do "$BATON" status -s "$W/ctl.sock" > /dev/null; done
status_us=$(( ($(us_of "$SUP") - c0) / 200 )); status_wall=$(( ($(now_us) - t0) / 200 ))
c0=$(us_of "$SUP"); t0=$(now_us)
restarts 100
first_us=$(( ($(us_of "$SUP") - c0) / 100 )); first_wall=$(( ($(now_us) - t0) / 100 ))
first_rss=$(rss_kib "$SUP")
# Memory along the way: a tenth of the run at a time.
left=$((N - 200)) step=$(( (N - 200) / 10 > 0 ? (N - 200) / 10 : 1 )) done_=100 rss_path=""
while [ "$left" -gt 0 ]; do
    k=$(( left < step ? left : step ))
    restarts "$k"
    left=$((left - k)) done_=$((done_ + k))
    rss_path+=" $done_:$(rss_kib "$SUP")"
done
c0=$(us_of "$SUP"); t0=$(now_us)
restarts 100
last_us=$(( ($(us_of "$SUP") - c0) / 100 )); last_wall=$(( ($(now_us) - t0) / 100 ))
last_rss=$(rss_kib "$SUP")
carry=$(stat -c %s "$XDG_RUNTIME_DIR"/rcost.*.carry 2>/dev/null || echo 0)
printf 'status round trip: supervisor CPU %d us per answer (wall %d us)\n' "$status_us" "$status_wall"
printf 'restarts 1-100:      supervisor CPU %6d us per restart = %5.1fx a status (wall %d ms), RSS %d KiB\n' \
    "$first_us" "$(echo "$first_us / $status_us" | bc -l)" $((first_wall / 1000)) "$first_rss"
printf 'restarts %d-%d: supervisor CPU %6d us per restart = %5.1fx a status (wall %d ms), RSS %d KiB\n' \
    $((N - 99)) "$N" "$last_us" "$(echo "$last_us / $status_us" | bc -l)" $((last_wall / 1000)) "$last_rss"
echo "RSS (KiB) after restarts:$rss_path"
printf 'last 100 / first 100: CPU %.2f, RSS %+d KiB; carry file %d bytes\n' \
    "$(echo "$last_us / $first_us" | bc -l)" $((last_rss - first_rss)) "$carry"
