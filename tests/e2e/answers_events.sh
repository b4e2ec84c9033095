#!/usr/bin/env bash
# `baton events` of any size (issue 22, item 6): 45 restarts rolled back,
# each reason quoting the failed generation's last stderr lines (lines of
# 1 KB, about 2 KB a reason): 100 KB of events, more than the 64 KiB a line
# of the control protocol may hold.
# `baton events`, `events --json` and `events -n 5` answer (exit 0) with
# every event, in order; the service serves throughout.
# Then the supervisor is SIGKILLed: the new `baton run` has the same
# history, read from the events file the old one appended to (carry.h).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"
export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
SVC="$T/service.lua"
CHATTY="$(dirname "$0")/../apps/chatty.py"
ROLLBACKS=${ROLLBACKS:-45}
echo "1 64" > "$T/mode"
cat > "$T/service.lua" <<LUA
return {
  name = "e2e-events",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "python3", "$CHATTY", "$T/mode" },
  ready_timeout = 10,
  drain_timeout = 5,
}
LUA
: > "$T/sup.log"
run_baton
wait_for 15 has_active || fail "no active generation"
active=$(active_generation)
echo "crash 5 1024" > "$T/mode"
for i in $(seq 1 "$ROLLBACKS"); do
    rc=0
    out=$("$BATON" restart -s "$SOCK" 2>&1) || rc=$?
    [ $rc = 1 ] || fail "rolled-back restart $i exited $rc: $(echo "$out" | cut -c 1-300)"
done
[ "$(active_generation)" = "$active" ] || fail "generation $active no longer serves"
"$BATON" events -s "$SOCK" > "$T/events.txt" 2> "$T/events.err" ||
    fail "baton events: $(cat "$T/events.err")"
[ "$(grep -c ' restart .* NO ' "$T/events.txt")" = "$ROLLBACKS" ] ||
    fail "baton events: $(grep -c ' restart .* NO ' "$T/events.txt") rolled-back restarts of $ROLLBACKS"
"$BATON" events -s "$SOCK" --json > "$T/events.json" 2> "$T/events.err" ||
    fail "baton events --json: $(cat "$T/events.err")"
python3 - "$T/events.json" "$ROLLBACKS" <<'PY' || fail "events --json: $(head -c 300 "$T/events.json")"
import json, sys
evs = json.load(open(sys.argv[1]))
back = [e for e in evs if e["kind"] == "restart" and not e["ok"]]
assert len(back) == int(sys.argv[2]), len(back)
assert all("chatty" in e["reason"] and len(e["reason"]) > 1024 for e in back), back[0]["reason"][:200]
times = [e["time"] for e in evs]
assert times == sorted(times), "not oldest first"
size = len(json.dumps(evs))
assert size > 65536, size
print("events --json: %d events, %d bytes" % (len(evs), size))
PY
"$BATON" events -s "$SOCK" -n 5 --json > "$T/n5.json" || fail "events -n 5"
[ "$(json_field 4.kind < "$T/n5.json")" = restart ] && ! json_field 5 < "$T/n5.json" > /dev/null ||
    fail "events -n 5: $(head -c 300 "$T/n5.json")"
echo "1 64" > "$T/mode"
# The events file: a line an event, not the history again at each change.
lines=$(cat "$XDG_RUNTIME_DIR"/e2e-events.*.events | wc -l)
events=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$T/events.json")
[ "$lines" = "$events" ] || fail "the events file holds $lines lines for $events events"
# shellcheck disable=SC2046 # one pid a word
track $(ps -o pid= --ppid "$BPID")
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
run_baton
wait_for 15 adopted_serving "$active" || fail "generation $active not adopted"
"$BATON" events -s "$SOCK" --json > "$T/after.json" || fail "events after the SIGKILL"
python3 - "$T/events.json" "$T/after.json" <<'PY' || fail "the history after the SIGKILL: $(head -c 300 "$T/after.json")"
import json, sys
before, after = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
def same(a, b):
    return abs(a["time"] - b["time"]) < 1 and all(a[k] == b[k] for k in ("kind", "generation", "ok", "reason"))
assert len(after) == len(before) + 1 and all(map(same, before, after)), (len(before), len(after))
assert after[-1]["kind"] == "adoption", after[-1]
print("after the SIGKILL: the %d events, then the adoption" % len(before))
PY
echo "ok: the history taken back after a SIGKILL"
"$BATON" restart -s "$SOCK" > /dev/null || fail "the restart after the rollbacks"
"$BATON" status -s "$SOCK" > /dev/null || fail "status"
stop_baton
echo "ok: baton events of $ROLLBACKS rolled-back restarts whose reasons quote about 2 KB of stderr each"
