#!/usr/bin/env bash
# The serving generation is SIGKILLed: the supervisor starts another at once
# (crash restart, first without backoff). The socket stays open in the
# supervisor, so no client is refused meanwhile: connections wait in the
# accept queue for the new generation. Only the requests that were inside
# the killed process can fail.
. "$(dirname "$0")/lib.sh"

hello_service
start_baton
start_load

for round in 1 2 3; do
    before=$(active_generation)
    pid=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"pid":[0-9]*,"state":"active"' | sed 's/"pid":\([0-9]*\).*/\1/')
    kill -9 "$pid"
    wait_for 10 active_is $((before + 1)) || fail "no new generation after crash $round"
    sleep 1.2 # the backoff grows: 0 s, then 1 s, then 2 s
done
sleep 1
stop_load
[ "$(load_field connect_errors)" = 0 ] || fail "clients were refused: $LOAD"
[ "$(load_field timeouts)" = 0 ] || fail "requests timed out: $LOAD"
lost=$(( $(load_field resets) + $(load_field eof) ))
[ "$lost" -le $((3 * 16)) ] || fail "more failures ($lost) than requests in flight at 3 crashes: $LOAD"
grep -q "generation 1 (pid [0-9]*) exited: killed by signal 9" "$T/sup.log" || fail "crash not logged"
grep -q "recovery after generation 1: generation 2 took over" "$T/sup.log" || fail "recovery not logged"
stop_baton
echo "ok: 3 crashes, $lost in-flight requests lost, 0 refused: $LOAD"
