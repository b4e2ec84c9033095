#!/usr/bin/env bash
# The built-ins' `every` coalesces: while a scheduled restart is under way
# (here each new generation hangs and is rolled back after ready_timeout),
# the ticks that come are skipped, not queued without bound behind it; the
# old generation serves throughout, with no failed request.
. "$(dirname "$0")/lib.sh"

hello_service
sed -i 's|^  drain_timeout = 10,|  drain_timeout = 10,\n  policy = { "default", every = 0.5 },|' "$T/service.lua"
READY_TIMEOUT=2
sed -i "s|ready_timeout = [0-9]*|ready_timeout = $READY_TIMEOUT|" "$T/service.lua"
start_baton
echo hang > "$T/mode"  # every later generation hangs: never READY=1
start_load
sleep 5                # ten ticks, two or three restarts of 2 s
stop_load
requested=$(grep -c "restart requested (every 0.5s)" "$T/sup.log" || true)
skipped=$(grep -c "every 0.5s: skipped, a restart is under way" "$T/sup.log" || true)
[ "$requested" -le 3 ] || fail "$requested scheduled restarts requested in 5 s of 2 s restarts: they queued"
[ "$skipped" -ge 4 ] || fail "only $skipped ticks skipped"
active_is 1 || fail "generation 1 does not serve"
assert_no_load_errors 100
echo "ok: $requested scheduled restarts ran, $skipped ticks skipped; $LOAD"

# Without the timer, nothing is left queued: at most the restart under way
# ends, and no other begins (queued ticks would run on for a long while).
sed -i 's|policy = { "default", every = 0.5 },|policy = "default",|' "$T/service.lua"
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload refused"
before=$(grep -c "restart requested" "$T/sup.log" || true)
sleep $((2 * READY_TIMEOUT + 1))
after=$(grep -c "restart requested" "$T/sup.log" || true)
[ "$after" -eq "$before" ] || fail "$((after - before)) queued restart(s) began after the timer was gone"
echo "ok: no restart was left queued"
rm -f "$T/mode"
stop_baton
