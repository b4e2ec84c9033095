#!/usr/bin/env bash
# `baton events` says why and how: a restart carries its trigger's reason
# (svc:restart("memory over 60 MiB") from a policy's trigger, or `baton
# restart`); a rollback is listed after the restart it ended; a drain ended
# by a `done` test of the policy's own with connections still open says
# so, not "idle".
. "$(dirname "$0")/lib.sh"

cat > "$T/policy.lua" <<'LUA'
local steps = require("baton.steps")
local policy = { defaults = { window = 0 } }
function policy.init(svc)
  svc:watch("trigger", function(s) s:restart("memory over 60 MiB") end)
end
function policy.restart(svc, old)
  local new, why = steps.ready_new(svc)
  if not new then return nil, why end
  if old and svc.options.window > 0 then
    svc:rollback_window(true)
    if svc:rollback_requested(svc.options.window) then return nil, "rolled back by hand" end
    svc:rollback_window(false)
  end
  svc:promote(new)
  -- A done test of its own that holds at once, connections or not.
  if old then old:drain{ deadline = 10, poll = 0.01, done = function() return true end } end
  return new
end
return steps.standard(policy)
LUA
service() { # service WINDOW
    cat > "$T/service.lua" <<LUA
return {
  name = "events-reasons",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  policy = { "policy.lua", window = $1 },
}
LUA
}
service 0
start_baton
events() { "$BATON" events -s "$SOCK" --json; }

# 1. The trigger's reason.
# An idle connection generation 1 accepted: open when its drain begins.
python3 -c 'import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"); s.recv(4096)
time.sleep(10)' "$PORT" &
HOLDER=$!
sleep 0.3
touch "$T/trigger"
wait_for 5 active_is 2 || fail "the watch trigger did not restart"
cause=$(events | json_field '[kind=restart].cause') || fail "the restart event has no cause: $(events)"
[ "$cause" = "memory over 60 MiB" ] || fail "cause: $cause"
"$BATON" events -s "$SOCK" | grep "restart" | grep -q "(asked for: memory over 60 MiB)" ||
    fail "baton events does not show the reason: $("$BATON" events -s "$SOCK")"
echo "ok: $("$BATON" events -s "$SOCK" | grep 'asked for: memory')"

# 3. The drain of generation 1 ended by the done test, with the held
# connection open.
drain1() { events | json_field '[kind=drain].reason'; }
wait_for 5 drain1 || fail "no drain event"
reason=$(drain1)
echo "$reason" | grep -q "^ended early: its done test passed with [0-9]* connections\? left" ||
    fail "the drain's reason: $reason"
kill "$HOLDER" 2>/dev/null || true
echo "ok: drain: $reason"

# 2. A rollback asked for during a restart's window: listed after it.
service 5
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload refused"
"$BATON" restart -s "$SOCK" > "$T/r" 2>&1 &
R=$!
window_open() { "$BATON" rollback -s "$SOCK" > "$T/rb" 2>&1; }
wait_for 5 window_open || fail "baton rollback was refused: $(cat "$T/rb")"
rc=0
wait $R || rc=$?
[ $rc -eq 1 ] || fail "the restart exited $rc: $(cat "$T/r")"
order=$(events | python3 -c '
import json, sys
ev = json.load(sys.stdin)
kinds = [e["kind"] for e in ev if e["kind"] in ("restart", "rollback")]
print(" ".join(kinds[-2:]))
last_restart = [e for e in ev if e["kind"] == "restart"][-1]
last_rollback = [e for e in ev if e["kind"] == "rollback"][-1]
assert last_rollback["ok"] and not last_restart["ok"], (last_restart, last_rollback)
assert last_rollback["time"] >= last_restart["time"], (last_restart, last_rollback)')
[ "$order" = "restart rollback" ] || fail "events list, last two: $order: $("$BATON" events -s "$SOCK")"
echo "ok: the rollback is listed after the restart it ended"
"$BATON" events -s "$SOCK" | tail -3
stop_baton
