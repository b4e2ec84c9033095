#!/usr/bin/env bash
# State carried across 20 restarts under load (handover policy, counter
# example): every hit the load client got an answer for is in the counter
# afterwards, not one more or less; keep-alive connections are handed to the
# next generation through the fd store; the client sees no error at all.
. "$(dirname "$0")/lib.sh"

counter_service
start_baton
start_load --path /load
for i in $(seq 1 20); do
    out=$("$BATON" restart -s "$SOCK" 2>&1) || fail "restart $i: $out"
    sleep 0.1
done
active_is 21 || fail "generation 21 should serve, $(active_generation) does"
stop_load
assert_no_load_errors 1000
have=$(count_of /load)
want=$(load_field ok)
[ "$have" = "$want" ] || fail "the counter says $have hits, the client got $want answers"
echo "ok: 20 restarts, counter $have == answers $want"

# The parked keep-alive connections went on to the next generation.
moved=$(grep -c "took over [1-9][0-9]* connection" "$T/sup.log" || true)
[ "$moved" -ge 15 ] || fail "connections were handed over in only $moved of 20 restarts"
grep -q "stored its state: " "$T/sup.log" || fail "no state stored"
echo "ok: keep-alive connections handed over in $moved of 20 restarts"

# The store holds the last state and nothing else (the connections were taken).
st=$("$BATON" status -s "$SOCK" --json | tr -d ' \n')
echo "$st" | grep -q '"fdstore":\[{"name":"state","generation":20' ||
    fail "the store should hold generation 20's state only: $st"
stop_baton
