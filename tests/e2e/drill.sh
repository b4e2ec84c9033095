#!/usr/bin/env bash
# baton drill: (1) the example server under the default policy: 5 restarts
# under drill's own load, every one took over, no request failed, exit 0,
# and --json says the same; (2) an app whose drain closes every keep-alive
# connection at SIGTERM (tests/apps/bad_drain.py): exit 1, the cause
# "keep-alive connection closed under a request" named with what to change.
# Each drill is bounded by `timeout`; the supervisors are killed by pid.
. "$(dirname "$0")/lib.sh"
SRC=${SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
[ -x "$PY" ] || { echo "skip: no $PY"; exit 77; }

# drill ARGS...: runs baton drill with a bound; output in $T/drill.out, exit code in RC.
drill() {
    RC=0
    timeout 120 "$BATON" drill -s "$SOCK" "$@" > "$T/drill.out" 2> "$T/drill.err" || RC=$?
    cat "$T/drill.out"
    [ "$RC" != 124 ] || fail "baton drill did not end within 120 s"
}

json_get() { # json_get EXPR: a Python expression over the object j, from $T/drill.out
    "$PY" -c "import json, sys; j = json.load(open(sys.argv[1])); print($1)" "$T/drill.out"
}

# (1) A good drain.
hello_service
start_baton
drill -n 5
[ "$RC" = 0 ] || fail "drill of the example server exited $RC: $(cat "$T/drill.err")"
grep -q '^restarts: 5 of 5 took over, 0 rolled back$' "$T/drill.out" || fail "not 5 restarts"
grep -q '^failures: none$' "$T/drill.out" || fail "failures reported"
grep -q '^verdict: PASS' "$T/drill.out" || fail "no PASS verdict"
ok=$(sed -n 's/^requests: \([0-9]*\) ok of.*/\1/p' "$T/drill.out")
[ "${ok:-0}" -gt 100 ] || fail "too few responses: ${ok:-none}"
[ "$(active_generation)" = 6 ] || fail "expected generation 6 active, got $(active_generation)"
[ ! -s "$T/drill.err" ] || fail "drill wrote to stderr: $(cat "$T/drill.err")"

drill -n 2 --connections 6 --json
[ "$RC" = 0 ] || fail "drill --json exited $RC"
[ "$(json_get 'j["ok"], j["restarts"]["took_over"], len(j["outcomes"]), j["requests"]["failed"], sum(j["failures"].values()), j["connections"]')" = \
    "True 2 2 0 0 {'keepalive': 3, 'close': 3}" ] || fail "unexpected --json object"
stop_baton

# Not running: exit 3.
drill -n 1
[ "$RC" = 3 ] || fail "drill with no supervisor exited $RC, not 3"

# (2) A bad drain: every connection closed at SIGTERM, requests on the wire or not.
cat > "$T/service.lua" <<LUA
return {
  name = "e2e-bad-drain",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$PY", "$SRC/tests/apps/bad_drain.py" },
  ready_timeout = 5,
  drain_timeout = 10,
}
LUA
start_baton
drill -n 5
[ "$RC" = 1 ] || fail "drill of a bad drain exited $RC, not 1"
line=$(grep -A1 'keep-alive connection closed under a request' "$T/drill.out") ||
    fail "the cause is not named"
n=$(echo "$line" | head -1 | awk '{ print $1 }')
[ "${n:-0}" -gt 0 ] || fail "no count for the cause: $line"
echo "$line" | grep -q 'what to change: the app.s drain: .*RFC 9112.*Connection: close' ||
    fail "no advice for the cause: $line"
grep -q '^verdict: FAIL' "$T/drill.out" || fail "no FAIL verdict"
grep -q '^restarts: 5 of 5 took over' "$T/drill.out" || fail "the restarts themselves should take over"

drill -n 2 --json
[ "$RC" = 1 ] || fail "drill --json of a bad drain exited $RC, not 1"
[ "$(json_get 'j["ok"], j["failures"]["keepalive_closed"] > 0, any(c["cause"] == "keepalive_closed" and "RFC 9112" in c["advice"] for c in j["causes"])')" = \
    "False True True" ] || fail "unexpected --json object for a bad drain"
stop_baton

# (3) An app that fails keep-alive clients with no restart at all (it closes
# each connection after its answer without `Connection: close`): drill
# says so, and does not blame the drain.
sed -i 's|^  drain_timeout = 10,|  drain_timeout = 10,\n  env = { NO_KEEPALIVE = "1" },|' "$T/service.lua"
start_baton
drill -n 2
[ "$RC" = 1 ] || fail "drill of an app without keep-alive exited $RC, not 1"
grep -q "^verdict: FAIL: .* in the 1 s before the first: the app fails without restarts too" "$T/drill.out" ||
    fail "the verdict blames the restarts: $(grep verdict "$T/drill.out")"
grep -A1 'keep-alive connection closed under a request' "$T/drill.out" | grep -q "before any restart: the app does this without restarts" ||
    fail "the cause is blamed on the drain: $(cat "$T/drill.out")"
stop_baton
echo "ok: drill passes the example server and names the bad drain ($n requests); an app failing without restarts is named as such"
