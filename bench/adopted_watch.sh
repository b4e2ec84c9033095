#!/usr/bin/env bash
# What watching an adopted generation costs the supervisor where the host
# gives no pidfd (Linux before 5.3, a sandbox): a timer asking every 100 ms
# whether the process lives (kill 0, then /proc/PID/stat for its start
# time), against a pidfd the loop polls (no work until it exits), measured
# in the same run. Each way: a service starts, its supervisor is SIGKILLed
# and run again, and adopts the generation; then the new supervisor's CPU
# time (all its threads, /proc/PID/task/*/schedstat, in ns) over SECONDS of
# an idle service. The polling way runs under tests/kernel/oldkernel 4.18,
# where pidfd_open answers ENOSYS; so does a third run, whose supervisor
# started its generation itself and watches nothing (the baseline of
# everything else an idle supervisor does under that profile).
#   bench/adopted_watch.sh [SECONDS]      (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
. bench/lib.sh
bench_build
# Absolute paths: the service file runs the app, and BUILD may be either.
BATON=$(realpath "$B/baton") HELLO=$(realpath "$B/examples/hello_server")
OLDKERNEL=$(realpath -m "$B/tests/oldkernel")
[ -x "$OLDKERNEL" ] || { echo "adopted_watch: no $OLDKERNEL (configure with -DBUILD_TESTING=ON)" >&2; exit 1; }
W=$(mktemp -d /tmp/baton-watch-bench.XXXXXX)
BPID=""
start_ticks() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2> /dev/null || true; }
: > "$W/orphans"
cleanup() {
    local pid ticks pids=""
    while read -r pid ticks; do
        [ "$(start_ticks "$pid")" != "$ticks" ] || pids+=" $pid"
    done < "$W/orphans"
    # shellcheck disable=SC2086 # one pid a word
    kill_tree "$BPID" $pids
    rm -rf "$W"
}
trap cleanup EXIT
export XDG_RUNTIME_DIR="$W/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
cat > "$W/svc.lua" <<LUA
return { name = "watch-bench", control = "$W/ctl.sock", listen = { http = "tcp://127.0.0.1:0" },
         command = { "$HELLO" } }
LUA
st() { "$BATON" status -s "$W/ctl.sock" --json 2> /dev/null | tr -d ' \n'; }
active_adopted() { st | grep -q '"state":"active"[^}]*"adopted":true'; }
active() { st | grep -q '"pid":'"$1"',.*"state":"active"'; }
# cpu_ns PID: on-CPU time of all of PID's threads so far.
cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { printf "%d\n", s }'; }

# measure WAY ADOPT [WRAPPER...]: starts the service (under WRAPPER); with
# ADOPT=1 kills that supervisor and runs another, which adopts; prints the
# supervisor's CPU ns over SECS.
measure() {
    local way=$1 adopt=$2 a b
    shift 2
    "$@" "$BATON" run "$W/svc.lua" 2>> "$W/sup.log" &
    BPID=$!
    wait_until 15 active "$BPID" > /dev/null || { tail -5 "$W/sup.log" >&2; exit 1; }
    if [ "$adopt" = 1 ]; then
        for p in $(ps -o pid= --ppid "$BPID"); do echo "$p $(start_ticks "$p")" >> "$W/orphans"; done
        kill -KILL "$BPID"
        wait "$BPID" 2> /dev/null || true
        "$@" "$BATON" run "$W/svc.lua" 2>> "$W/sup.log" &
        BPID=$!
        wait_until 15 active_adopted > /dev/null || { tail -5 "$W/sup.log" >&2; exit 1; }
    fi
    sleep 1 # the start's own work done
    a=$(cpu_ns "$BPID")
    sleep "$SECS"
    b=$(cpu_ns "$BPID")
    "$BATON" stop -s "$W/ctl.sock" > /dev/null
    wait "$BPID" 2> /dev/null || true
    BPID=""
    echo $((b - a))
}

pidfd=$(measure pidfd 1)
poll=$(measure poll 1 "$OLDKERNEL" 4.18)
none=$(measure none 0 "$OLDKERNEL" 4.18)
grep -q "no pidfd (Function not implemented): watching it every" "$W/sup.log" ||
    { echo "adopted_watch: the 4.18 run did not poll" >&2; exit 1; }
awk -v s="$SECS" -v a="$pidfd" -v p="$poll" -v n="$none" 'BEGIN {
    printf "adopted_watch: %d s idle, supervisor CPU: pidfd %.1f us/s, polling %.1f us/s, nothing watched (4.18) %.1f us/s\n",
        s, a / s / 1e3, p / s / 1e3, n / s / 1e3
    printf "adopted_watch: the poll costs %.1f us/s (%.1f us a look, 10 looks/s: %.3f %% of a core); ",
        (p - n) / s / 1e3, (p - n) / s / 10 / 1e3, (p - n) / s / 1e7
    if (a > 0)
        printf "polling/pidfd ratio %.1f\n", p / a
    else
        printf "polling/pidfd ratio unbounded: the pidfd way took no CPU at all (%d ns)\n", a
}'
