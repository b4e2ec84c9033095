#!/usr/bin/env bash
# How long a new `baton run` takes to take a service back after its
# supervisor was SIGKILLed (read the carried state, check each generation
# against the kernel, take the listeners and the stats region from the
# keeper, adopt the live generation) against a fresh `baton run` of the same
# service (bind, spawn the example server, READY=1), in the same run.
# N rounds, each: a fresh start (measured: the baseline), SIGKILL of that
# supervisor (reaped, as a shell or service manager above would), a new
# `baton run` (measured), `baton stop`.
# Both are timed from just before `baton run` starts to the first status
# answer showing what counts: for the fresh start an active generation, for
# the adoption the generation that served before, active and adopted. A
# client polls the control socket every ms itself (scripts/status_poll.py's
# way: no process per request, which would measure exec, not baton).
# Figures: median and p90 of each, the ratio of the medians; and how many
# rounds fell back to a fresh start instead of adopting (they are left out
# of the figures).
#   bench/adopt.sh [N]     (default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}
. bench/lib.sh
bench_build
# Absolute paths: the service file runs the app, and BUILD may be either.
BATON=$(realpath "$B/baton") HELLO=$(realpath "$B/examples/hello_server")
W=$(mktemp -d /tmp/baton-adopt-bench.XXXXXX)
BPID="" POLLER=""
# A killed supervisor's generations and keeper are no longer below BPID:
# each is kept as "PID START_TICKS" and killed only if still that process.
start_ticks() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2> /dev/null || true; }
cleanup() {
    kill_tree "$BPID" "$POLLER"
    [ ! -f "$W/orphans" ] || kill_orphans "$W/orphans"
    rm -rf "$W"
}
trap cleanup EXIT
# The runtime folder (carried state, keeper socket) of this run alone.
export XDG_RUNTIME_DIR="$W/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"

cat > "$W/svc.lua" <<LUA
return { name = "adopt-bench", control = "$W/ctl.sock", listen = { http = "tcp://127.0.0.1:0" },
         command = { "$HELLO" } }
LUA

# poll.py SOCK READY NOT_PID [ID]: touches READY, then asks for status every
# ms until the supervisor answering is not NOT_PID and an active generation
# serves (with ID: that generation, marked adopted); prints the wall clock
# then (ns), or "timeout" after 10 s.
cat > "$W/poll.py" <<'PY'
import json, socket, sys, time
sock, ready, not_pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
want = int(sys.argv[4]) if len(sys.argv) > 4 else None
def status():
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    try:
        c.connect(sock)
        c.sendall(b'{"cmd":"status"}\n')
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(65536)
            if not chunk:
                break
            data += chunk
        return json.loads(data)
    except (OSError, ValueError):
        return None
    finally:
        c.close()
open(ready, "w").close()
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    d = status()
    if d and d.get("ok") and d.get("pid") != not_pid:
        act = [g for g in d["generations"] if g["state"] == "active"]
        if act and (want is None or (act[0]["id"] == want and act[0].get("adopted"))):
            print(time.time_ns())
            sys.exit(0)
    time.sleep(0.001)
print("timeout")
PY

# timed_run NOT_PID [ID]: starts `baton run` (BPID) with the poller ready;
# sets MS to the milliseconds to the poller's answer, or "timeout".
timed_run() {
    rm -f "$W/ready"
    python3 "$W/poll.py" "$W/ctl.sock" "$W/ready" "$@" > "$W/poll.out" &
    POLLER=$!
    wait_until 10 test -e "$W/ready" > /dev/null
    local t0 t1
    t0=$(date +%s%N)
    "$BATON" run "$W/svc.lua" 2>> "$W/sup.log" &
    BPID=$!
    wait "$POLLER" || true
    POLLER=""
    t1=$(cat "$W/poll.out")
    MS=timeout
    [ "$t1" = timeout ] || MS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
}
# kill_orphans FILE: the processes FILE lists ("PID START_TICKS"), if still those.
kill_orphans() {
    local pid ticks pids=""
    while read -r pid ticks; do
        [ "$(start_ticks "$pid")" != "$ticks" ] || pids+=" $pid"
    done < "$1"
    # shellcheck disable=SC2086 # one pid a word
    kill_tree $pids
}

: > "$W/fresh" && : > "$W/adopted" && : > "$W/orphans"
lost=0
for i in $(seq 1 "$N"); do
    timed_run 0
    [ "$MS" != timeout ] || { echo "round $i: no generation served within 10 s" >&2; tail -20 "$W/sup.log" >&2; exit 1; }
    echo "$MS" >> "$W/fresh"
    read -r gen _ <<< "$("$BATON" status -s "$W/ctl.sock" --json | tr -d ' \n' |
        grep -o '"id":[0-9]*,"pid":[0-9]*,"state":"active"' | head -1 | sed 's/"id":\([0-9]*\),"pid":\([0-9]*\).*/\1 \2/')"
    : > "$W/orphans.$i"
    for p in $(ps -o pid= --ppid "$BPID"); do echo "$p $(start_ticks "$p")" >> "$W/orphans.$i"; done
    cat "$W/orphans.$i" >> "$W/orphans"
    old=$BPID
    kill -KILL "$BPID"
    wait "$BPID" 2> /dev/null || true
    BPID=""
    timed_run "$old" "$gen"
    if [ "$MS" = timeout ]; then
        lost=$((lost + 1))
        echo "round $i: not adopted: $(grep "cannot be taken back" "$W/sup.log" | tail -1)" >&2
        kill_orphans "$W/orphans.$i" # what the new supervisor did not take: nobody's now
    else
        echo "$MS" >> "$W/adopted"
    fi
    "$BATON" stop -s "$W/ctl.sock" > /dev/null
    wait "$BPID" || true
    BPID=""
done

p90() { sort -n | awk '{ a[NR] = $1 } END { i = int(NR * 0.9 + 0.999); print NR ? a[i < 1 ? 1 : i] : 0 }'; }
fresh_med=$(median < "$W/fresh") fresh_p90=$(p90 < "$W/fresh")
adopt_med=$(median < "$W/adopted") adopt_p90=$(p90 < "$W/adopted")
ratio=$(awk -v a="$adopt_med" -v b="$fresh_med" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
echo "baton run after a SIGKILL of the supervisor, $N rounds (example server, no load)"
echo "  to the service taken back (status: the generation that served, active, adopted)"
echo "      median $adopt_med ms, p90 $adopt_p90 ms ($(wc -l < "$W/adopted") adopted, $lost fell back to a fresh start)"
echo "  baseline, same run: a fresh baton run to its first generation serving"
echo "      median $fresh_med ms, p90 $fresh_p90 ms"
echo "  ratio adoption / fresh start (medians): $ratio"
echo "adopt: rounds=$N adopted median_ms=$adopt_med p90_ms=$adopt_p90 lost=$lost | fresh median_ms=$fresh_med p90_ms=$fresh_p90 | ratio=$ratio"
