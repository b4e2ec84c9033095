#!/usr/bin/env bash
# The history and the CLI's contracts, with a real supervisor under load:
# - `baton events --json` is a JSON array of objects with time (unix
#   seconds), kind, generation, ok and reason: after a restart that took
#   over, one rolled back (its reason: the generation exited before it was
#   ready), a crash and its recovery, and a refused reload (its reason);
#   -n N gives the newest N;
# - `baton status` shows each exited generation's end (drained, rolled
#   back, crashed) with its start and end times, and the last restart;
# - the socket is found from -f SERVICE_FILE, and from the runtime folder
#   when there is one supervisor there; exit 3 when none runs.
. "$(dirname "$0")/lib.sh"

mkdir -m 0700 "$T/run"
export XDG_RUNTIME_DIR="$T/run"
rc=0
"$BATON" status > "$T/none.out" 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "status with nothing running exited $rc: $(cat "$T/none.out")"
rc=0
"$BATON" events -s "$T/nowhere.sock" > /dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "events on a missing socket exited $rc"
echo "ok: exit 3 when nothing runs ($(cat "$T/none.out"))"

# No control key: the socket is the default in the runtime folder.
SOCK="$T/run/e2e.sock"
hello_service
sed -i '/control =/d' "$T/service.lua"
start_baton
start_load
"$BATON" status > /dev/null || fail "status did not find the one supervisor in the runtime folder"
"$BATON" status -f "$T/service.lua" > /dev/null || fail "status -f did not find the socket"
echo "ok: the socket found from the runtime folder and from -f"

"$BATON" restart -f "$T/service.lua" > /dev/null || fail "restart"
echo crash > "$T/mode"
"$BATON" restart -f "$T/service.lua" > /dev/null 2>&1 && fail "the crashing restart took over"
echo ok > "$T/mode"
victim=$(active_generation)
pid=$("$BATON" status --json | tr -d ' \n' | grep -o '"id":'"$victim"',"pid":[0-9]*' | sed 's/.*://')
kill -9 "$pid"
wait_for 10 active_is $((victim + 2)) || fail "no recovery after the crash"
cp "$T/service.lua" "$T/service.good"
echo 'return { bad = ' > "$T/service.lua"
"$BATON" reload > /dev/null 2>&1 && fail "a broken service file was reloaded"
cp "$T/service.good" "$T/service.lua"

"$BATON" events --json > "$T/events.json" || fail "events --json failed"
python3 - "$T/events.json" "$victim" <<'PY' || fail "events: $(cat "$T/events.json")"
import json, sys, time
evs = json.load(open(sys.argv[1]))
victim = int(sys.argv[2])
assert isinstance(evs, list) and evs, evs
for e in evs:
    for k, t in (("time", (int, float)), ("kind", str), ("generation", int), ("ok", bool), ("reason", str)):
        assert isinstance(e.get(k), t), (k, e)
    assert abs(e["time"] - time.time()) < 120, e
kinds = [(e["kind"], e["ok"]) for e in evs]
def find(kind, ok, text=""):
    m = [e for e in evs if e["kind"] == kind and e["ok"] == ok and text in e["reason"]]
    assert m, (kind, ok, text, kinds)
    return m[-1]
find("start", True)
find("restart", True, "took over")
find("restart", False, "exited before it was ready (exit code 3)")
c = find("crash", False, "killed by signal 9")
assert c["generation"] == victim, c
find("recovery", True, "took over")
find("reload", False, "service.lua")
find("drain", True)
print("events:", ", ".join(f"{k}{'' if ok else '!'}" for k, ok in kinds))
PY
[ "$("$BATON" events -n 2 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 2 ] ||
    fail "events -n 2 did not give 2"

"$BATON" status --json > "$T/status.json"
python3 - "$T/status.json" <<'PY' || fail "status: $(cat "$T/status.json")"
import json, sys
s = json.load(open(sys.argv[1]))
ends = {g["id"]: g.get("end", "") for g in s["generations"] if g["state"] == "exited"}
assert any(e.startswith("drained") for e in ends.values()), ends
assert any(e.startswith("rolled back") for e in ends.values()), ends
assert any(e.startswith("crashed, killed by signal 9") for e in ends.values()), ends
for g in s["generations"]:
    assert g["started_at"] > 1e9, g
    if g["state"] == "exited":
        assert g["exited_at"] >= g["started_at"] and g["status"] == "", g
assert s["last_restart"]["ok"] is False and "exit code 3" in s["last_restart"]["reason"], s["last_restart"]
print("ends:", ends)
PY
"$BATON" status | grep -q "last restart ROLLED BACK" || fail "status text: $("$BATON" status)"
stop_load
# The SIGKILLed generation takes its open connections (8 keep-alive, at
# most 8 more in flight) with it; nothing may be refused or time out.
for f in non2xx connect_errors timeouts; do
    [ "$(load_field $f)" = 0 ] || fail "load client saw $f=$(load_field $f): $LOAD"
done
[ $(($(load_field resets) + $(load_field eof))) -le 32 ] || fail "more failures than the killed generation held: $LOAD"
stop_baton
echo "ok: history and CLI contracts, $LOAD"
