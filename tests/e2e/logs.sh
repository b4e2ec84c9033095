#!/usr/bin/env bash
# What generations print, under load: captured through pipes, tagged in the
# supervisor's output, kept for `baton logs`.
# - A generation that fails at start: its last stderr lines are in the
#   rollback's reason, and `baton logs --gen N --json` prints them, one
#   JSON object per line with time, generation, stream and line.
# - `baton logs -f --json` follows: a drain's lines arrive as they come.
. "$(dirname "$0")/lib.sh"

hello_service
start_baton
start_load

echo crash > "$T/mode"
rc=0
out=$("$BATON" restart -s "$SOCK" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "the crashing restart exited $rc: $out"
echo "$out" | grep -q "its last stderr: hello\[[0-9]*\]: mode file says crash: exiting 3" ||
    fail "no last stderr lines in the reason: $out"
echo "ok: $out"
echo ok > "$T/mode"
failed=$(echo "$out" | grep -o 'generation [0-9]* exited' | grep -o '[0-9]*')
"$BATON" logs -s "$SOCK" --gen "$failed" --json > "$T/logs.json"
python3 - "$T/logs.json" "$failed" <<'PY' || fail "logs: $(cat "$T/logs.json")"
import json, sys, time
gen = int(sys.argv[2])
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines, "no lines"
for l in lines:
    for k, t in (("time", (int, float)), ("generation", int), ("stream", str), ("line", str)):
        assert isinstance(l.get(k), t), (k, l)
    assert l["generation"] == gen and abs(l["time"] - time.time()) < 120, l
assert any(l["stream"] == "stderr" and "mode file says crash" in l["line"] for l in lines), lines
print("logs:", lines[-1]["line"])
PY
grep -q "gen $failed err| hello\[[0-9]*\]: mode file says crash" "$T/sup.log" || fail "not tagged in the supervisor's output"

"$BATON" logs -s "$SOCK" -f --json > "$T/follow.json" &
FPID=$!
sleep 0.5
old=$(active_generation)
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart"
drained() { grep -q "\"generation\":$old,\"stream\":\"stderr\",\"line\":\"hello\[[0-9]*\]: drained, exiting\"" "$T/follow.json"; }
wait_for 5 drained || { kill "$FPID"; fail "logs -f did not follow the drain: $(tail -3 "$T/follow.json")"; }
kill "$FPID" 2>/dev/null || true
wait "$FPID" 2>/dev/null || true
echo "ok: logs -f followed generation $old's drain"

# -n 0: nothing already written, with -f only what comes next.
[ -z "$("$BATON" logs -s "$SOCK" -n 0)" ] || fail "logs -n 0 printed lines"
"$BATON" logs -s "$SOCK" -f -n 0 --json > "$T/follow0.json" &
FPID=$!
sleep 0.5
[ ! -s "$T/follow0.json" ] || { kill "$FPID"; fail "logs -f -n 0 printed old lines: $(head -2 "$T/follow0.json")"; }
old=$(active_generation)
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart"
drained0() { grep -q "\"generation\":$old,\"stream\":\"stderr\",\"line\":\"hello\[[0-9]*\]: drained, exiting\"" "$T/follow0.json"; }
wait_for 5 drained0 || { kill "$FPID"; fail "logs -f -n 0 did not follow: $(tail -3 "$T/follow0.json")"; }
kill "$FPID" 2>/dev/null || true
wait "$FPID" 2>/dev/null || true
grep -q "generation\":$(($old - 1))," "$T/follow0.json" && fail "logs -f -n 0 printed an older generation's lines"
rc=0
out=$("$BATON" logs -s "$SOCK" -f "$T/service.lua" 2>&1) || rc=$?
[ $rc -eq 2 ] || fail "logs -f FILE exited $rc"
echo "$out" | grep -q "(-f follows here; name the service file with --file $T/service.lua)" || fail "logs -f FILE said: $out"
echo "ok: logs -n 0 and -f -n 0; logs -f FILE says to use --file"
stop_load
assert_no_load_errors 50
stop_baton
echo "ok: app output captured, kept and followed, $LOAD"

# log_format = "json": every line of the supervisor's output is a JSON
# object: its own messages and what the generation printed.
sed -i 's|^}$|  log_format = "json",\n}|' "$T/service.lua"
start_baton
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart with the json log"
stop_baton
python3 - "$T/sup.log" <<'PY' || fail "log_format json: $(head -3 "$T/sup.log")"
import json, sys
objs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
own = [o for o in objs if "msg" in o]
app = [o for o in objs if "line" in o]
assert own and app, (len(own), len(app))
assert all(o["time"].endswith("Z") and o["level"] in ("info", "warn", "error", "debug") for o in own)
assert all(o["stream"] in ("stdout", "stderr") and o["generation"] >= 1 for o in app)
assert any("drained" in o["line"] for o in app), app
print(f"json log: {len(own)} supervisor lines, {len(app)} app lines")
PY
echo "ok: log_format json"
