#!/usr/bin/env bash
# 50 restarts of a steered listener under keep-alive and new-connection
# load: no connection refused, reset or cut (a member leaves its group
# only once its generation took no more connections and its queue is
# empty, and only when no slot the kernel moves is one the steering
# program may pick), one live generation at the end, and the supervisor's
# fds flat: it holds the serving generation's member and at most the one
# of each generation that exited since the last spawn (they leave when
# the next one joins).
. "$(dirname "$0")/lib.sh"
RESTARTS=${RESTARTS:-50}
cat > "$T/service.lua" <<LUA
return {
  name = "e2e-steer-restarts",
  control = "$SOCK",
  listen = { http = { "tcp://127.0.0.1:0", steer = true } },
  command = { "$HELLO" },
  ready_timeout = 5,
  drain_timeout = 20,
  policy = { "graceful", quiet = 2 },
}
LUA
start_baton
start_load
nfds() { ls "/proc/$BPID/fd" | wc -l; }
members() { # sockets of the supervisor listening on PORT
    ss -tlnpH "sport = :$PORT" 2>/dev/null | grep -c "pid=$BPID," || true
}
[ "$(members)" = 1 ] || fail "the supervisor holds $(members) members, not 1"
one_live() {
    [ "$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"state":"[a-z]*"' | grep -vc exited)" = 1 ]
}
"$BATON" restart -s "$SOCK" > /dev/null || fail "first restart"
wait_for 30 one_live || fail "the first drain did not end"
sleep 1
before=$(nfds)
held=$(members)
[ "$held" -le 2 ] || fail "after one restart the supervisor holds $held members"
for i in $(seq 1 "$RESTARTS"); do
    out=$("$BATON" restart -s "$SOCK") || fail "restart $i exited non-zero: $out"
    sleep 0.2
done
wait_for 60 one_live || fail "the drains did not end"
# Members of generations that exited since the last spawn wait for the
# next one to join: one more restart, once the burst's drains ended.
"$BATON" restart -s "$SOCK" > /dev/null || fail "the last restart"
wait_for 30 one_live || fail "the last drain did not end"
wait_for 15 sh -c "[ \$(ss -tlnpH 'sport = :$PORT' | grep -c 'pid=$BPID,') -le 2 ]" ||
    fail "the supervisor still holds $(members) members after the drains"
stop_load
assert_no_load_errors 1000
! grep -q "left its steered group with" "$T/sup.log" || fail "a member left with connections queued"

after=$(nfds)
echo "supervisor fds: $before before, $after after $RESTARTS restarts"
[ "$after" -le $((before + 2)) ] || fail "supervisor fds grew from $before to $after"
stop_baton
echo "ok: $RESTARTS restarts, $LOAD"
