#!/usr/bin/env bash
# A soak of the supervisor's own life under load: R restarts, U upgrades
# and K SIGKILL-and-adopt rounds of the example server, interleaved (K
# rounds, each R/K restarts, U/K upgrades, then a SIGKILL of the
# supervisor and a new `baton run` that takes the service back), under
# keep-alive and new-connection load from bench/loadgen for the whole
# run. After each round: the supervisor's and the keeper's open fds and
# resident memory. Printed: the figures after the first round (the
# baseline, same run) and after the last, with their ratio; the rounds'
# extremes; the load's failed requests (0 expected).
#   bench/soak.sh [R U K]      (default 1000 50 20; a quick look: 100 5 4)
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-1000} U=${2:-50} K=${3:-20}
[ "$K" -ge 2 ] || { echo "soak: K must be at least 2 (a baseline round and one more)" >&2; exit 2; }
. bench/lib.sh
bench_build
BATON=$(realpath "$B/baton") HELLO=$(realpath "$B/examples/hello_server") LOADGEN=$(realpath "$B/bench/loadgen")
W=$(mktemp -d /tmp/baton-soak.XXXXXX)
BPID="" LPID=""
start_ticks() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2> /dev/null || true; }
# kill_orphans FILE: the processes FILE lists ("PID START_TICKS"), if still those.
kill_orphans() {
    local pid ticks pids=""
    while read -r pid ticks; do
        [ "$(start_ticks "$pid")" != "$ticks" ] || pids+=" $pid"
    done < "$1"
    # shellcheck disable=SC2086 # one pid a word
    kill_tree $pids
}
cleanup() {
    kill_tree "$LPID" "$BPID"
    [ ! -f "$W/orphans" ] || kill_orphans "$W/orphans"
    rm -rf "$W"
}
trap cleanup EXIT
export XDG_RUNTIME_DIR="$W/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
: > "$W/orphans"
PORT=$(free_port)
cat > "$W/svc.lua" <<LUA
return { name = "soak", control = "$W/ctl.sock", listen = { http = "tcp://127.0.0.1:$PORT" },
         command = { "$HELLO" }, drain_timeout = 10 }
LUA
status() { "$BATON" status -s "$W/ctl.sock" --json; }
keeper_of() { status | tr -d ' \n' | grep -o '"keeper":[0-9]*' | grep -o '[0-9]*$'; }
active() { [ -n "$(baton_active_pid "$W/ctl.sock" 2> /dev/null)" ]; }
run() {
    "$BATON" run "$W/svc.lua" >> "$W/sup.log" 2>&1 &
    BPID=$!
    wait_until 30 active
}
adopted() { grep -c "took over the service: 1 generation(s) adopted" "$W/sup.log" || true; }

run
"$LOADGEN" --port "$PORT" --keepalive 8 --close 8 --duration 600 > "$W/load.log" &
LPID=$!
: > "$W/figures"
started=$(now_ms)
for k in $(seq 1 "$K"); do
    # This round's share, so that the totals are R and U exactly.
    for _ in $(seq 1 $(( k * R / K - (k - 1) * R / K ))); do "$BATON" restart -s "$W/ctl.sock" > /dev/null; done
    for _ in $(seq 1 $(( k * U / K - (k - 1) * U / K ))); do "$BATON" upgrade -s "$W/ctl.sock" > /dev/null; done
    keeper=$(keeper_of)
    echo "$k $(fd_count "$BPID") $(rss_kib "$BPID") $(fd_count "$keeper") $(rss_kib "$keeper")" >> "$W/figures"
    # The round's SIGKILL: what the supervisor had is tracked, by pid and start.
    for p in $(ps -o pid= --ppid "$BPID"); do echo "$p $(start_ticks "$p")" >> "$W/orphans"; done
    n=$(adopted)
    kill -KILL "$BPID"
    wait "$BPID" 2> /dev/null || true
    run
    wait_until 30 test "$(adopted)" -gt "$n" || { echo "round $k: not adopted" >&2; tail -5 "$W/sup.log" >&2; exit 1; }
done
took=$(( $(now_ms) - started ))
kill -0 "$LPID" 2> /dev/null || { echo "soak: the load ended before the soak (600 s at most): fewer rounds" >&2; exit 1; }
kill -INT "$LPID"
wait "$LPID" || true
LPID=""
load=$(grep '^loadgen:' "$W/load.log")
"$BATON" stop -s "$W/ctl.sock" > /dev/null || true
wait "$BPID" 2> /dev/null || true
BPID=""

read -r _ f0 m0 kf0 km0 < <(head -1 "$W/figures")
read -r _ f1 m1 kf1 km1 < <(tail -1 "$W/figures")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b / (a ? a : 1) }'; }
span() { awk -v c="$1" '{ v = $c; if (NR == 1 || v < lo) lo = v; if (NR == 1 || v > hi) hi = v } END { print lo "-" hi }' "$W/figures"; }
echo "soak: $R restarts, $U upgrades, $K SIGKILL-and-adopt rounds in $((took / 1000)) s, under load"
printf '%-28s %12s %12s %8s %12s\n' "" "round 1" "round $K" "ratio" "all rounds"
printf '%-28s %12s %12s %8s %12s\n' "supervisor fds" "$f0" "$f1" "$(ratio "$f0" "$f1")" "$(span 2)"
printf '%-28s %12s %12s %8s %12s\n' "supervisor resident KiB" "$m0" "$m1" "$(ratio "$m0" "$m1")" "$(span 3)"
printf '%-28s %12s %12s %8s %12s\n' "keeper fds" "$kf0" "$kf1" "$(ratio "$kf0" "$kf1")" "$(span 4)"
printf '%-28s %12s %12s %8s %12s\n' "keeper resident KiB" "$km0" "$km1" "$(ratio "$km0" "$km1")" "$(span 5)"
echo "$load"
for f in connect_errors resets eof timeouts non2xx; do
    [ "$(load_field "$load" "$f")" = 0 ] || { echo "soak: the load saw $f" >&2; exit 1; }
done
