#!/usr/bin/env bash
# How many times one default-policy restart crosses the C/Lua boundary: the
# supervisor counts each event it hands the runtime, each view it asks for,
# and each call the runtime makes into baton.core or the budget, in the
# metric baton.boundary_crossings (reading it crosses nothing). Five
# restarts of the example server, each measured from before `baton
# restart` until its old generation has drained; the figure is printed,
# and must stay at or under the bound (45 before the boundary of
# src/loop/core_api.h; 27 with it, 28 since the runtime tells a service manager
# the STATUS= of each restart, 30 since it logs the promotion and the start
# of the drain, which `baton restart` shows as its progress; 35 since the
# supervisor reads the runtime's carried state after each event that
# changes it, for a successor should it die: docs/takeover.md).
. "$(dirname "$0")/lib.sh"

BOUND=35
hello_service
start_baton
crossings() {
    "$BATON" stats -s "$SOCK" --json | python3 -c '
import json, sys
m = [m for m in json.load(sys.stdin)["metrics"] if m["name"] == "baton.boundary_crossings"]
print(int(m[0]["value"]) if m else -1)'
}
# The old generation has exited once the process table holds one entry;
# read through `baton stats`, which does not cross the boundary.
one_generation() {
    "$BATON" stats -s "$SOCK" --json | tr -d ' \n' | grep -Eq '"name":"baton.generations","type":"gauge","value":1(\.0)?[,}]'
}
figures=""
for i in 1 2 3 4 5; do
    before=$(crossings)
    [ "$before" -ge 0 ] || fail "no baton.boundary_crossings metric"
    "$BATON" restart -s "$SOCK" > /dev/null || fail "restart $i failed"
    wait_for 10 one_generation || fail "restart $i: the old generation did not drain"
    after=$(crossings)
    n=$((after - before))
    figures="$figures $n"
    [ "$n" -le "$BOUND" ] || fail "restart $i crossed the boundary $n times (bound $BOUND)"
done
stop_baton
echo "ok: one default-policy restart crosses the C/Lua boundary:$figures times (bound $BOUND)"
