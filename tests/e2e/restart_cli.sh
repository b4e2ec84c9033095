#!/usr/bin/env bash
# `baton restart` as an operator sees it, under load, the socket found
# from -f SERVICE_FILE:
# - with --progress (what a terminal gets by default) each step arrives as
#   the supervisor takes it: started, ready, the blue/green window,
#   promoted, draining, took over; in that order, with rising times, the
#   window's seconds visibly between ready and promoted;
# - --json is one object (ok, outcome, new, old, reason, duration) and
#   nothing on stderr: after a takeover, after a generation that crashed at
#   start (its stderr in the reason, exit 1), and after `baton rollback`
#   during the window;
# - not on a terminal and without --progress, only the answer.
. "$(dirname "$0")/lib.sh"

hello_service
sed -i 's/^}$/  policy = { "bluegreen", window = 1 },\n}/' "$T/service.lua"
start_baton
start_load
F=(-f "$T/service.lua")

# 1. Progress, as it happens.
"$BATON" restart "${F[@]}" --progress > "$T/progress.out" 2> "$T/progress.err" ||
    fail "restart with --progress: $(cat "$T/progress.out" "$T/progress.err")"
cat "$T/progress.out"
[ ! -s "$T/progress.err" ] || fail "restart --progress wrote to stderr: $(cat "$T/progress.err")"
python3 - "$T/progress.out" <<'PY' || fail "the progress lines are not the restart's steps in order"
import re, sys
lines = open(sys.argv[1]).read().splitlines()
steps = [r"restart requested", r"generation 2 started \(pid \d+\)", r"generation 2 is ready",
         r"rollback window open", r"generation 2 promoted", r"generation 1 draining \(SIGTERM",
         r"restart: generation 2 took over from generation 1"]
times, at = [], 0
for pat in steps:
    for i in range(at, len(lines)):
        m = re.match(r"\s+(\d+\.\d+)s  (.*)$", lines[i])
        if m and re.search(pat, m.group(2)):
            times.append(float(m.group(1)))
            at = i + 1
            break
    else:
        sys.exit("missing, or out of order: " + pat)
assert times == sorted(times), times
# The window (1 s) lies between ready and promoted: the lines came as the
# steps happened, not all at the end.
assert times[4] - times[2] >= 0.9, times
assert lines[-1] == "generation 2 took over from generation 1", lines[-1]
PY

# 2. Not on a terminal, no --progress: the answer alone.
"$BATON" restart "${F[@]}" > "$T/plain.out" 2>&1 || fail "plain restart: $(cat "$T/plain.out")"
[ "$(cat "$T/plain.out")" = "generation 3 took over from generation 2" ] ||
    fail "a plain restart printed more than its answer: $(cat "$T/plain.out")"

# 3. --json after a takeover.
json_result() { # EXPECTED_RC FILE: runs a restart with --json into FILE
    local rc=0
    timeout 30 "$BATON" restart "${F[@]}" --json > "$T/$2.json" 2> "$T/$2.err" || rc=$?
    [ $rc -eq "$1" ] || fail "restart --json ($2) exited $rc, not $1: $(cat "$T/$2.json")"
    [ ! -s "$T/$2.err" ] || fail "restart --json ($2) wrote to stderr: $(cat "$T/$2.err")"
}
json_result 0 took
python3 - "$T/took.json" <<'PY' || fail "bad --json result after a takeover: $(cat "$T/took.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] is True and r["outcome"] == "took over", r
assert r["new"] == 4 and r["old"] == 3 and r["reason"] == "", r
assert 0.9 <= r["duration"] < 10, r
PY

# 4. --json after a generation that crashed at start.
echo crash > "$T/mode"
json_result 1 crashed
python3 - "$T/crashed.json" <<'PY' || fail "bad --json result after a crash: $(cat "$T/crashed.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] is False and r["outcome"] == "rolled back", r
assert r["new"] == 5 and r["old"] == 4, r
assert "exited before it was ready" in r["reason"], r
assert "mode file says crash" in r["reason"], r  # its last stderr line
assert isinstance(r["duration"], (int, float)), r
PY
# A generation whose last words are not UTF-8 (Latin-1 and stray bytes):
# the answer still comes, its reason with '?' for what JSON cannot carry.
echo crash-bytes > "$T/mode"
json_result 1 bytes
python3 - "$T/bytes.json" <<'PY' || fail "bad --json result after a crash in bytes: $(cat "$T/bytes.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["outcome"] == "rolled back" and "caf? ??: exiting 3" in r["reason"], r
PY
"$BATON" events -f "$T/service.lua" --json | python3 -c '
import json, sys
e = [e for e in json.load(sys.stdin) if e["kind"] == "restart"][-1]
assert "caf? ??" in e["reason"], e' || fail "the history lost the reason in bytes"
rm -f "$T/mode"

# 5. --json after `baton rollback` in the window.
"$BATON" restart "${F[@]}" --json > "$T/rb.json" 2> "$T/rb.err" &
RPID=$!
wait_for 5 grep -q "rollback window open: \`baton rollback\` now returns to generation 4" "$T/sup.log" ||
    fail "no window opened"
"$BATON" rollback "${F[@]}" > /dev/null || fail "baton rollback in the window was refused"
rc=0
wait $RPID || rc=$?
[ $rc -eq 1 ] || fail "a rolled-back restart exited $rc: $(cat "$T/rb.json")"
[ ! -s "$T/rb.err" ] || fail "restart --json wrote to stderr: $(cat "$T/rb.err")"
python3 - "$T/rb.json" <<'PY' || fail "bad --json result after a rollback: $(cat "$T/rb.json")"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] is False and r["outcome"] == "rolled back" and r["old"] == 4 and r["new"] == 7, r
assert "rollback" in r["reason"], r
PY
active_is 4 || fail "generation 4 should serve after the rollback, not $(active_generation)"

stop_load
assert_no_load_errors 100
echo "ok: restart progress in order, --json results (took over, crashed, rolled back), $LOAD"
