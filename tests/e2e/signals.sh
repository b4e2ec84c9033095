#!/usr/bin/env bash
# SIGHUP starts a restart; SIGTERM drains every generation and exits 0; a
# second SIGTERM kills what does not drain; orphans are reaped.
. "$(dirname "$0")/lib.sh"

cat > "$T/service.lua" <<LUA
return {
  name = "signals-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$SOURCE_DIR/tests/apps/orphan_maker.sh", "$HELLO", "--mode-file", "$T/mode" },
  ready_timeout = 5,
  drain_timeout = 30,
}
LUA
BATON_LOG_LEVEL=debug start_baton
start_load

# SIGHUP: a restart, as if `baton restart` had been run.
kill -HUP "$BPID"
wait_for 10 active_is 2 || fail "SIGHUP did not bring generation 2"
# Zombies would show as state Z among the supervisor's children.
sleep 0.6
zombies() { ps -o stat= --ppid "$BPID" | grep -c '^Z' || true; }
[ "$(zombies)" = 0 ] || fail "zombie children: $(ps -o pid,stat,cmd --ppid "$BPID")"
# ...and the orphans came to the supervisor (subreaper), not to init.
grep -q "reaped pid [0-9]* (not a generation's main process)" "$T/sup.log" ||
    fail "the supervisor reaped no orphan"

# SIGTERM: drain and exit 0, with no request failing on the way.
stop_load
assert_no_load_errors 100
kill -TERM "$BPID"
rc=0
wait "$BPID" || rc=$?
BPID=""
[ $rc -eq 0 ] || fail "supervisor exited $rc after SIGTERM"
grep -q "generation 2 drained" "$T/sup.log" || fail "generation 2 was not drained"
echo "ok: SIGHUP restart, SIGTERM graceful stop"

# A generation that ignores SIGTERM: the second SIGTERM kills it at once.
cat > "$T/stubborn.lua" <<LUA
return {
  name = "stubborn",
  control = "$SOCK",
  command = { "sh", "-c", "trap '' TERM; echo READY=1 | python3 -c 'import os,socket,sys; s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.sendto(sys.stdin.read().encode(), os.environ[\"NOTIFY_SOCKET\"])'; while :; do sleep 0.1; done" },
  drain_timeout = 60,
}
LUA
"$BATON" run "$T/stubborn.lua" > "$T/sup.log" 2>&1 &
BPID=$!
wait_for 10 has_active || fail "stubborn service did not start"
kill -TERM "$BPID"
sleep 0.5
kill -0 "$BPID" || fail "supervisor gave up on draining too early"
start=$(date +%s%N)
kill -TERM "$BPID"
rc=0
wait "$BPID" || rc=$?
BPID=""
took=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$took" -lt 3000 ] || fail "second SIGTERM took ${took} ms"
grep -q "killing every generation now" "$T/sup.log" || fail "no kill message"
echo "ok: second SIGTERM killed a stubborn generation in ${took} ms (exit $rc)"
