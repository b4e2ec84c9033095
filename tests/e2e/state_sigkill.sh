#!/usr/bin/env bash
# A generation that stores its state and is SIGKILLed right after: the
# state outlives it, and the generation started in its place has it. Hits
# answered after the last store are gone with the process (that is what a
# checkpoint means); the test counts exactly that.
. "$(dirname "$0")/lib.sh"

counter_service 1 1 '"default"'
start_baton
for _ in 1 2 3 4 5; do curl -sf "http://127.0.0.1:$PORT/kept" > /dev/null; done
pid=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"pid":[0-9]*,"state":"active"' | grep -o '[0-9]*')
curl -sf "http://127.0.0.1:$PORT/_save" > /dev/null && kill -9 "$pid"
wait_for 15 active_is 2 || fail "no generation 2 after the SIGKILL"
[ "$(count_of /kept)" = 5 ] || fail "generation 2 counts $(count_of /kept) hits on /kept, want 5"
grep -q "generation 1 (pid $pid) exited: killed by signal 9" "$T/sup.log" || fail "no SIGKILL logged"
echo "ok: state stored by a SIGKILLed generation reached the next one"

# Again, with no pause at all between the store and the kill, three more
# times (each crash in a row doubles the policy's backoff: 1, 2, 4 s).
for round in 1 2 3; do
    gen=$((round + 1))
    curl -sf "http://127.0.0.1:$PORT/kept" > /dev/null
    pid=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"pid":[0-9]*,"state":"active"' | grep -o '[0-9]*')
    { curl -sf "http://127.0.0.1:$PORT/_save" > /dev/null; kill -9 "$pid"; }
    wait_for 15 active_is $((gen + 1)) || fail "round $round: no generation $((gen + 1))"
    [ "$(count_of /kept)" = $((5 + round)) ] ||
        fail "round $round: $(count_of /kept) hits on /kept, want $((5 + round))"
done
echo "ok: 3 more SIGKILLs right after a store, nothing stored was lost"
stop_baton
