#!/usr/bin/env bash
# baton as PID 1 of its own PID namespace, as in a container: it starts,
# restarts under load with no failed request, reaps orphans, and stops on
# SIGTERM (which the kernel would drop for a PID 1 without a handler).
. "$(dirname "$0")/lib.sh"
unshare --pid --fork --kill-child true 2>/dev/null || { echo "skip: cannot create a PID namespace here"; exit 77; }

cat > "$T/service.lua" <<LUA
return {
  name = "pid1-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$SOURCE_DIR/tests/apps/orphan_maker.sh", "$HELLO" },
}
LUA
BATON_LOG_LEVEL=debug unshare --pid --fork --kill-child "$BATON" run "$T/service.lua" > "$T/sup.log" 2>&1 &
UPID=$!
BPID=$UPID # cleanup ends the namespace's whole tree, by pid
wait_for 10 has_active || fail "no active generation"
grep -q "baton\[1\]" "$T/sup.log" || fail "the supervisor is not PID 1 in its namespace"
PORT=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | sed -n 's/.*"address":"tcp:\/\/127\.0\.0\.1:\([0-9]*\)".*/\1/p')
start_load
for i in 1 2 3 4 5; do "$BATON" restart -s "$SOCK" > /dev/null || fail "restart $i"; done
stop_load
assert_no_load_errors 100
sleep 0.5
grep -q "reaped pid [0-9]* (not a generation's main process)" "$T/sup.log" || fail "PID 1 reaped no orphan"
SUP=$(ps -o pid= --ppid "$UPID" | tr -d ' ') # unshare's one child: the supervisor
[ -n "$SUP" ] || fail "no supervisor under unshare (pid $UPID)"
kill -TERM "$SUP"
rc=0
wait "$UPID" || rc=$?
BPID=""
[ $rc -eq 0 ] || fail "PID 1 supervisor exited $rc after SIGTERM"
grep -q "stopping gracefully" "$T/sup.log" || fail "SIGTERM was not handled by PID 1"
echo "ok: PID 1, 5 restarts, $LOAD"
