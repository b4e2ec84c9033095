# Helpers for the end-to-end tests: a real supervisor, real apps, real load.
# Every wait is bounded; everything started is killed on exit.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/procs.sh"

: "${BATON:?}" "${HELLO:?}" "${LOADGEN:?}"
T=$(mktemp -d /tmp/baton-e2e.XXXXXX)
SOCK="$T/control.sock"
# KERNEL_PROFILE (tests/kernel/oldkernel.c: 4.18, 5.4, nosockdiag ...):
# every baton the test runs, and so everything it starts, runs under that
# seccomp profile. BATON becomes a script that execs oldkernel, which execs
# baton: the pid a test takes of `"$BATON" run &` is the supervisor's.
# BATON_IMAGE stays the binary itself (what status calls image.binary).
BATON_IMAGE=$(readlink -f "$BATON")
if [ -n "${KERNEL_PROFILE:-}" ]; then
    : "${OLDKERNEL:?KERNEL_PROFILE needs OLDKERNEL (tests/kernel/oldkernel)}"
    printf '#!/bin/sh\nexec "%s" "%s" "%s" "$@"\n' "$OLDKERNEL" "$KERNEL_PROFILE" \
        "$BATON_IMAGE" > "$T/baton-$KERNEL_PROFILE"
    chmod 755 "$T/baton-$KERNEL_PROFILE"
    BATON="$T/baton-$KERNEL_PROFILE"
    echo "kernel profile: $KERNEL_PROFILE"
fi
BPID=""
LPID=""

cleanup() {
    local rc=$?
    [ -n "$LPID" ] && kill -9 "$LPID" 2>/dev/null || true
    # The supervisor, its generations and whatever they started, by pid.
    kill_tree "$BPID"
    if [ $rc -ne 0 ] && [ -f "$T/sup.log" ]; then
        echo "--- supervisor log (last 60 lines) ---" >&2
        tail -60 "$T/sup.log" >&2
    fi
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# wait_for SECONDS COMMAND...: polls every 50 ms until COMMAND succeeds.
wait_for() {
    local limit=$1
    shift
    local n=$((limit * 20))
    for _ in $(seq 1 "$n"); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    return 1
}

# A service file running the example server (or $APP) on a free loopback
# port; $T/mode decides how the next generation behaves (see hello_server.c).
hello_service() {
    cat > "$T/service.lua" <<LUA
return {
  name = "e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "${APP:-$HELLO}", "--mode-file", "$T/mode" },
  ready_timeout = ${READY_TIMEOUT:-5},
  drain_timeout = 10,
}
LUA
}

# A service file running the counter example (its hit counters survive
# restarts) under POLICY (default: handover), expecting state schema VERSION
# (default 1), the app reading and writing schema SCHEMA (default VERSION),
# blobs of at most $COUNTER_MAX_SIZE (default 64K).
# $T/fault names a broken blob for its next checkpoint to store (see
# counter_server.c). Extra service file lines come from $COUNTER_EXTRA.
counter_service() {
    local version=${1:-1} schema=${2:-${1:-1}} policy=${3:-'"handover"'}
    cat > "$T/service.lua" <<LUA
return {
  name = "e2e-counter",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$COUNTER", "--schema", "$schema", "--fault-file", "$T/fault" },
  state = { version = $version, max_size = "${COUNTER_MAX_SIZE:-64K}" },
  ready_timeout = 5,
  drain_timeout = 10,
  policy = $policy,
  ${COUNTER_EXTRA:-}
}
LUA
}

# The count the counter server holds for PATH (0 when it has none).
count_of() {
    local n
    n=$(curl -sf "http://127.0.0.1:$PORT/_count" | awk -v p="$1" '$1 == p { print $2 }')
    echo "${n:-0}"
}

# json_field PATH: the value at PATH in the JSON on stdin, the one way these
# tests read a field (of `baton status --json`, say): keys joined by dots, a
# number picks an array's item, KEY[F=V] the first item of array KEY whose
# field F is V (as printed; a dot inside [F=V] is V's). A string prints
# bare, a whole number as an integer (stats' counters are floats: 4.0
# prints 4), anything else as JSON; nothing there: prints nothing, exits 1.
#   baton status --json | json_field 'generations[state=active].pid'
json_field() {
    python3 -c '
import json, re, sys
def text(x):
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return x if isinstance(x, str) else json.dumps(x)
v = json.load(sys.stdin)
for part in re.findall(r"(?:[^.\[]|\[[^\]]*\])+", sys.argv[1]):
    m = re.fullmatch(r"([^\[]*)\[([^=\]]+)=([^\]]*)\]", part)
    try:
        if m:
            v = v[m[1]] if m[1] else v
            v = next(x for x in v if isinstance(x, dict) and text(x.get(m[2])) == m[3])
        elif isinstance(v, list):
            v = v[int(part)]
        else:
            v = v[part]
    except (KeyError, IndexError, ValueError, TypeError, StopIteration):
        sys.exit(1)
print(text(v))' "$1"
}

# status_field PATH: json_field PATH of `baton status --json`.
status_field() { "$BATON" status -s "$SOCK" --json | json_field "$1"; }

active_generation() {
    "$BATON" status -s "$SOCK" --json | tr -d ' \n' |
        grep -o '"id":[0-9]*,"pid":[0-9]*,"state":"active"' | head -1 | sed 's/"id":\([0-9]*\).*/\1/'
}

# The keeper's pid as status names it (image.keeper), or nothing.
keeper_of() {
    "$BATON" status -s "$SOCK" --json | tr -d ' \n' | { grep -o '"keeper":[0-9]*' || true; } | grep -o '[0-9]*' || true
}

has_active() { [ -n "$(active_generation)" ]; }

start_baton() {
    "$BATON" run "${1:-$T/service.lua}" > "$T/sup.log" 2>&1 &
    BPID=$!
    wait_for 15 has_active || fail "supervisor did not bring up an active generation"
    # The first listener's port (a per_generation one says port 0).
    PORT=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' |
        grep -o '"address":"tcp://127\.0\.0\.1:[0-9]*"' | head -1 | sed 's/.*:\([0-9]*\)"$/\1/')
    [ -n "$PORT" ] || fail "no port in status"
}

# start_load [ARGS]: keep-alive and new-connection traffic, until stop_load.
start_load() {
    "$LOADGEN" --port "$PORT" --keepalive 8 --close 8 --duration 300 "$@" > "$T/load.log" &
    LPID=$!
    sleep 0.5
}

stop_load() {
    kill -INT "$LPID"
    wait "$LPID" || fail "loadgen exited non-zero"
    LPID=""
    LOAD=$(grep '^loadgen:' "$T/load.log")
    echo "$LOAD"
}

load_field() { echo "$LOAD" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

assert_no_load_errors() {
    local f
    for f in non2xx connect_errors resets eof timeouts; do
        [ "$(load_field $f)" = 0 ] || fail "load client saw $f=$(load_field $f): $LOAD"
    done
    [ "$(load_field ok)" -gt "${1:-100}" ] || fail "too few responses: $LOAD"
}

stop_baton() {
    "$BATON" stop -s "$SOCK" > /dev/null || fail "baton stop failed"
    local rc=0
    wait "$BPID" || rc=$?
    BPID=""
    [ $rc -eq 0 ] || fail "supervisor exited with $rc after stop"
}

active_is() { [ "$(active_generation)" = "$1" ]; }

# One client asking the control socket for status every 2 ms
# (scripts/status_poll.py). Writes "SLOWEST_MS ANSWERS"; an answer that is
# not ok, or none within 5 s, is 99999.
start_poller() {
    rm -f "$T/stop" "$T/worst" "$T/polling"
    python3 "$(dirname "${BASH_SOURCE[0]}")/../../scripts/status_poll.py" "$SOCK" "$T/stop" \
        --ready "$T/polling" > "$T/worst" &
    POLLER=$!
    wait_for 10 test -e "$T/polling" || {
        kill "$POLLER" 2>/dev/null || true
        fail "the status poller did not start: $(cat "$T/worst")"
    }
}

# stop_poller WHAT BOUND_MS: stops it; fails unless it got an answer and the
# slowest took less than BOUND_MS. Sets WORST and POLLS.
stop_poller() {
    sleep 0.1 # the answers right after the command count too
    touch "$T/stop"
    wait "$POLLER" || true
    WORST=99999 POLLS=0
    read -r WORST POLLS < "$T/worst" || true
    [ "${POLLS:-0}" -ge 1 ] || fail "$1: the status poller got no answer ($(cat "$T/worst"))"
    [ "$WORST" -lt "$2" ] || fail "$1: the slowest of $POLLS status answers took $WORST ms (bound $2 ms)"
}

# poller_baseline SECONDS: the slowest status answer while the supervisor
# does nothing but what runs already (the load, its generations), over
# SECONDS, taken once in the same run as the windows it is compared with
# (stop_poller_vs): a loaded machine slows both alike. Sets BASE_WORST and
# BASE_POLLS.
poller_baseline() {
    start_poller
    sleep "$1"
    stop_poller "baseline" 99999
    BASE_WORST=$WORST BASE_POLLS=$POLLS
}

# stop_poller_vs WHAT FLOOR_MS RATIO: stop_poller with the bound
# max(FLOOR_MS, RATIO x BASE_WORST): an answer RATIO times slower than the
# baseline's slowest, and slower than FLOOR_MS, is a loop held by WHAT, not
# a busy machine. A miss takes the baseline again (the machine's load comes
# and goes: a build may have started since) and is judged against the
# slower of the two. Sets BOUND (and WORST, POLLS).
stop_poller_vs() {
    [ -n "${BASE_WORST:-}" ] || fail "stop_poller_vs before poller_baseline"
    stop_poller "$1" 99999 # fails on no answer, or one that is not ok
    local worst=$WORST polls=$POLLS
    BOUND=$(($3 * BASE_WORST))
    [ "$BOUND" -ge "$2" ] || BOUND=$2
    [ "$worst" -ge "$BOUND" ] || return 0
    local was=$BASE_WORST
    poller_baseline 2
    echo "note: $1: the slowest of $polls status answers took $worst ms (bound $BOUND ms);" \
        "the idle baseline again: $BASE_WORST ms (was $was ms)" >&2
    [ "$BASE_WORST" -ge "$was" ] || BASE_WORST=$was
    BOUND=$(($3 * BASE_WORST))
    [ "$BOUND" -ge "$2" ] || BOUND=$2
    WORST=$worst POLLS=$polls
    [ "$worst" -lt "$BOUND" ] ||
        fail "$1: the slowest of $polls status answers took $worst ms (bound $BOUND ms: $3 x the idle baseline's $BASE_WORST ms, at least $2 ms)"
}

# restarts N [PAUSE]: N `baton restart`s one after the other, PAUSE
# seconds apart (default none); each must take over (exit 0).
restarts() {
    local i out
    for i in $(seq 1 "$1"); do
        out=$("$BATON" restart -s "$SOCK" --json) || fail "restart $i: $out"
        [ -z "${2:-}" ] || sleep "$2"
    done
}

# drains_clean N [SECONDS]: waits (up to SECONDS, default 25) until the
# history holds N drains, then fails unless each ended because its
# generation held no connection (baton saw none: "ended early: idle") or
# exited by itself, none at its deadline. Sets NDRAINS, NIDLE (ended by
# baton), MEDIAN_MS and SLOWEST_MS.
drains_clean() {
    # DRAINS_WANTED, not a local: wait_for's own locals would shadow it.
    DRAINS_WANTED=$1
    local summary
    drained() { "$BATON" events -s "$SOCK" --json | python3 -c '
import json, sys
sys.exit(0 if sum(e["kind"] == "drain" for e in json.load(sys.stdin)) >= int(sys.argv[1]) else 1)' "$DRAINS_WANTED"; }
    wait_for "${2:-25}" drained || fail "not all $DRAINS_WANTED drains ended: $("$BATON" events -s "$SOCK" --json)"
    summary=$("$BATON" events -s "$SOCK" --json | python3 -c '
import json, sys
d = [e for e in json.load(sys.stdin) if e["kind"] == "drain"]
bad = [e for e in d if not e["reason"].startswith(("ended early: idle", "ended by its exit"))]
if bad:
    print(bad)
    sys.exit(1)
ds = sorted(e["duration"] for e in d)
idle = sum(e["reason"].startswith("ended early: idle") for e in d)
print(len(d), idle, round(ds[len(ds) // 2] * 1000), round(ds[-1] * 1000))') ||
        fail "a drain did not end by idleness or exit: $summary"
    read -r NDRAINS NIDLE MEDIAN_MS SLOWEST_MS <<< "$summary"
}

# The drain's `done` hook, polled every 10 ms, never ran out of its budget
# (reading the kernel is the supervisor's time), and the kernel's figures
# were whole.
assert_hooks_in_budget() {
    ! grep -q "exceeded its time budget" "$T/sup.log" ||
        fail "a policy hook ran out of its budget: $(grep -m1 "exceeded its time budget" "$T/sup.log")"
    ! grep -q "figures are partial" "$T/sup.log" || fail "$(grep -m1 "figures are partial" "$T/sup.log")"
}

# recipe_restarts HOW: a recipe's proof (docs/recipes.md): 10 restarts
# under load with 0 connect errors, then 10 drains each ended as HOW says:
# "exit" (every drain ended by the server's own exit) or "no-deadline"
# (none killed at its deadline). Sets LOAD.
recipe_restarts() {
    local how=$1 i
    start_load
    for i in $(seq 1 10); do
        "$BATON" restart -s "$SOCK" > /dev/null || fail "restart $i: $(tail -5 "$T/sup.log")"
    done
    stop_load
    [ "$(load_field connect_errors)" = 0 ] || fail "connect errors: $LOAD"
    recipe_drains() { "$BATON" events -s "$SOCK" --json | python3 -c '
import json, sys
d = [e for e in json.load(sys.stdin) if e["kind"] == "drain"]
if len(d) < 10: sys.exit(1)
if sys.argv[1] == "exit":
    bad = [e["reason"] for e in d if not e["reason"].startswith("ended by its exit")]
else:
    bad = [e["reason"] for e in d if "deadline" in e["reason"]]
print(len(d), bad)
sys.exit(2 if bad else 0)' "$how"; }
    wait_for 30 recipe_drains || fail "the drains: $(recipe_drains)"
}
