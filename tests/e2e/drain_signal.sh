#!/usr/bin/env bash
# Every built-in takes `signal`, the drain signal: an app that drains on
# QUIT (nginx) and ignores TERM drains in a moment under { "graceful",
# signal = "QUIT" }, with no request lost under load. Under the TERM
# default the same app serves on: a second after the signal the
# supervisor names it ("still listening 1s after SIGTERM: does it drain on
# TERM?") in its log and in the drain's event, and the drain ends at its
# deadline.
. "$(dirname "$0")/lib.sh"

service() { # service POLICY
    cat > "$T/service.lua" <<LUA
return {
  name = "drain-signal",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO", "--drain-signal", "QUIT" },
  drain_timeout = 4,
  policy = $1,
}
LUA
}
service '{ "graceful", signal = "QUIT" }'
"$BATON" check "$T/service.lua" > /dev/null || fail "check refused signal = QUIT"
start_baton
start_load

for i in 1 2 3 4 5; do
    "$BATON" restart -s "$SOCK" > /dev/null || fail "restart $i failed"
done
drains_idle() { [ "$("$BATON" events -s "$SOCK" --json | python3 -c '
import json, sys
print(sum(1 for e in json.load(sys.stdin) if e["kind"] == "drain" and e["ok"]))')" -ge 5 ]; }
wait_for 10 drains_idle || fail "the QUIT drains did not all end: $("$BATON" events -s "$SOCK")"
grep -q "draining (SIGQUIT" "$T/sup.log" || fail "no drain sent QUIT"
if grep -q "does it drain on" "$T/sup.log"; then fail "a QUIT drain was flagged: $(grep 'does it drain' "$T/sup.log")"; fi
if "$BATON" events -s "$SOCK" --json | grep -q "killed at its deadline"; then fail "a QUIT drain ran to its deadline"; fi
stop_load
assert_no_load_errors 500
echo "ok: 5 restarts, drains on QUIT ended early, $LOAD"

# The same app under the TERM default: flagged, and it serves on until
# the deadline, when it is killed. One idle keep-alive connection held on
# it keeps it from being idle (graceful would otherwise stop an app that
# ignores TERM once it holds no connection, and end the drain early: see
# graceful_ignorer.sh); no load here, this part is about the hint.
service '"graceful"'
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload to graceful refused"
python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
s.recv(4096)
time.sleep(30)' "$PORT" &
HOLDER=$!
trap 'kill $HOLDER 2> /dev/null; cleanup' EXIT
sleep 0.5
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart under TERM failed"
old=$(($(active_generation) - 1))
wait_for 5 grep -q "generation $old (pid [0-9]*) is still listening 1s after SIGTERM: does it drain on TERM?" \
    "$T/sup.log" || fail "no hint in the log"
echo "ok: $(grep -o "generation $old (pid [0-9]*) is still listening.*" "$T/sup.log" | head -1)"
drain_reason() { "$BATON" events -s "$SOCK" --json | python3 -c '
import json, sys
ev = [e for e in json.load(sys.stdin) if e["kind"] == "drain" and e.get("generation") == int(sys.argv[1])]
print(ev[-1]["reason"]) if ev else sys.exit(1)' "$old"; }
wait_for 10 drain_reason || fail "the drain of generation $old did not end"
reason=$(drain_reason)
echo "$reason" | grep -q "killed at its deadline (4s)" || fail "drain reason: $reason"
echo "$reason" | grep -q "it was still listening 1s after SIGTERM" || fail "no hint in the drain's event: $reason"
echo "ok: its drain event says: $reason"
stop_baton
