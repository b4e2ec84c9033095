#!/usr/bin/env bash
# A policy that misbehaves in every way a script can: an endless loop (even
# one that catches its own errors), error(), a runaway allocation, a hook
# that waits forever. Each is stopped within its budget and the restart is
# rolled back, `baton status` answers all the while as fast as while the
# supervisor idles (the slowest answer under RATIO times the slowest of an
# idle window taken first, under the same load, or under FLOOR_MS: a loop
# held for a 500 ms slice, or for good, fails it on an idle or a loaded
# machine alike), the service serves without a single failed request, and a
# sane restart works afterwards.
. "$(dirname "$0")/lib.sh"

cat > "$T/policy.lua" <<'LUA'
local default = require("baton.policies.default")
local calls = 0
local p = { start = default.start }
function p.restart(svc, old)
  calls = calls + 1
  if calls == 1 then
    while true do pcall(function() while true do end end) end
  elseif calls == 2 then
    error("deliberate failure")
  elseif calls == 3 then
    local hoard = {}
    for i = 1, 1e9 do hoard[i] = ("x"):rep(1000000) .. i end
  elseif calls == 4 then
    svc:sleep(1e9) -- (policies have no coroutine library: a wait is how one hangs)
  end
  return default.restart(svc, old)
end
return p
LUA
cat > "$T/service.lua" <<LUA
return {
  name = "hostile-policy-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  policy = "policy.lua",
  -- each limit tested on its own: the slice is long so that memory is what stops the hoarder
  policy_limits = { instructions = 1000000, slice_ms = 500, memory_mb = 8, timeout = 2 },
}
LUA
FLOOR_MS=${FLOOR_MS:-250} RATIO=${RATIO:-5}
start_baton
start_load
serving=$(active_generation)
poller_baseline 2
echo "ok: idle baseline: slowest of $BASE_POLLS status answers: $BASE_WORST ms"

expect() {
    local what=$1 pattern=$2 out rc=0
    start_poller
    out=$("$BATON" restart -s "$SOCK" 2>&1) || rc=$?
    stop_poller_vs "$what" "$FLOOR_MS" "$RATIO"
    [ $rc -eq 1 ] || fail "$what: restart exited $rc: $out"
    echo "$out" | grep -q "$pattern" || fail "$what: want '$pattern' in: $out"
    [ "$(active_generation)" = "$serving" ] || fail "$what: generation $serving stopped serving"
    echo "ok: $what -> $out (slowest of $POLLS status answers: ${WORST} ms, bound $BOUND ms)"
}

expect "endless loop" "exceeded its instruction budget"
expect "error()" "deliberate failure"
expect "runaway allocation" "exceeded its memory cap"
expect "waits forever" "did not finish within 2s"

"$BATON" restart -s "$SOCK" > /dev/null || fail "a sane restart after all that failed"
stop_load
assert_no_load_errors 1000
grep -q "traceback" "$T/sup.log" || fail "no traceback logged"
n=$("$BATON" stats -s "$SOCK" --json | json_field 'metrics[name=baton.policy_errors].value' || true)
[ "$n" = 4 ] || fail "baton.policy_errors is $n, want 4"
stop_baton
echo "ok: hostile policies contained, $LOAD"
