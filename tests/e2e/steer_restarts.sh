#!/usr/bin/env bash
# 50 restarts of a steered listener under keep-alive and new-connection
# load: no connection refused, reset or cut (a member leaves its group
# only once its generation took no more connections and its queue is
# empty), one live generation at the end, each member the supervisor held
# closed after its generation: its fds are flat.
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
before=$(nfds)
[ "$(members)" = 1 ] || fail "the supervisor holds $(members) members, not 1"
for i in $(seq 1 "$RESTARTS"); do
    out=$("$BATON" restart -s "$SOCK") || fail "restart $i exited non-zero: $out"
    sleep 0.2
done
one_live() {
    [ "$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"state":"[a-z]*"' | grep -vc exited)" = 1 ]
}
wait_for 60 one_live || fail "the drains did not end"
wait_for 15 sh -c "[ \$(ss -tlnpH 'sport = :$PORT' | grep -c 'pid=$BPID,') = 1 ]" ||
    fail "the supervisor still holds $(members) members after the drains"
stop_load
assert_no_load_errors 1000
! grep -q "left its steered group with" "$T/sup.log" || fail "a member left with connections queued"

after=$(nfds)
echo "supervisor fds: $before before, $after after $RESTARTS restarts"
[ "$after" -le $((before + 2)) ] || fail "supervisor fds grew from $before to $after"
stop_baton
echo "ok: $RESTARTS restarts, $LOAD"
