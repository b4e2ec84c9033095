#!/usr/bin/env bash
# Two options every built-in takes, with real processes:
#   start_limit = { 3, 60 }: the third crash of the serving generation
#     within 60 s gives up: nothing is started again, `baton status` says
#     FAILED and why, and an event says so, until `baton restart`.
#   max_memory = "40M": a generation whose resident memory stays over it
#     is restarted, with the reason in `baton events`, at most once per
#     memory_interval.
. "$(dirname "$0")/lib.sh"

cat > "$T/service.lua" <<LUA
return {
  name = "builtin-limits",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  ready_timeout = 5,
  policy = { "graceful", start_limit = { 3, 60 } },
}
LUA
start_baton
crash_active() {
    local pid
    pid=$(status_field 'generations[state=active].pid') || fail "nothing serves: $("$BATON" status -s "$SOCK")"
    kill -9 "$pid"
}
crash_active
wait_for 10 active_is 2 || fail "no recovery after crash 1"
crash_active
wait_for 10 active_is 3 || fail "no recovery after crash 2"
crash_active
failed() { status_field failed > /dev/null; }
wait_for 10 failed || fail "no failed state after crash 3: $("$BATON" status -s "$SOCK")"
why=$(status_field failed)
[ "$why" = "start_limit: 3 crashes or failed recoveries within 60s" ] || fail "failed: $why"
"$BATON" status -s "$SOCK" | grep -q "FAILED   start_limit: 3 crashes" || fail "status text: $("$BATON" status -s "$SOCK")"
sleep 3 # the backoff of a fourth try would have run by now
has_active && fail "a generation was started after giving up"
"$BATON" events -s "$SOCK" --json | json_field '[kind=failed].reason' | grep -q "baton restart starts again" ||
    fail "no failed event: $("$BATON" events -s "$SOCK")"
echo "ok: gave up after 3 crashes: $why"
"$BATON" restart -s "$SOCK" > /dev/null || fail "baton restart did not start it again"
has_active || fail "nothing serves after baton restart"
failed && fail "still failed after baton restart"
echo "ok: baton restart started it again"
stop_baton

# max_memory: an app holding 64 MiB that sends READY=1 and serves fd 3.
cat > "$T/fat.py" <<'PY'
import os, socket, time
ballast = bytearray(64 * 1024 * 1024)
for i in range(0, len(ballast), 4096):
    ballast[i] = 1  # touched: resident
s = socket.socket(fileno=3)
n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
n.sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
while True:
    c, _ = s.accept()
    c.recv(4096)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nfat")
    c.close()
PY
cat > "$T/service.lua" <<LUA
return {
  name = "builtin-limits",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "python3", "$T/fat.py" },
  ready_timeout = 10,
  drain_timeout = 3,
  policy = { "default", max_memory = "40M", memory_interval = 60 },
}
LUA
start_baton
memory_restart() { "$BATON" events -s "$SOCK" --json | json_field '[kind=restart].cause' > /dev/null; }
wait_for 20 memory_restart || fail "no restart for memory: $("$BATON" events -s "$SOCK")"
cause=$("$BATON" events -s "$SOCK" --json | json_field '[kind=restart].cause')
echo "$cause" | grep -q "^memory over 40 MiB (generation 1: [0-9]* MiB resident)$" || fail "cause: $cause"
active_is 2 || fail "generation 2 does not serve"
echo "ok: restarted for memory: $cause"
sleep 12 # generation 2 is as fat: within memory_interval, no second restart
n=$("$BATON" events -s "$SOCK" --json | python3 -c '
import json, sys
print(sum(1 for e in json.load(sys.stdin) if e["kind"] == "restart"))')
[ "$n" = 1 ] || fail "$n restarts within memory_interval"
echo "ok: at most once per memory_interval"
stop_baton
