#!/usr/bin/env bash
# A policy built with steps.standard that leaves out `restart` (only an
# init hook of its own, say) gets the default's hooks for what it left out,
# at `baton run` as `baton check` promised: it starts, restarts and
# recovers from a crash. It failed at run with "attempt to call field
# 'restart'" while check passed it.
. "$(dirname "$0")/lib.sh"

cat > "$T/policy.lua" <<'LUA'
local steps = require("baton.steps")
return steps.standard({
  init = function(svc) svc:log("info", "partial policy: init ran") end,
})
LUA
cat > "$T/service.lua" <<LUA
return {
  name = "policy-partial",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  ready_timeout = 5,
  drain_timeout = 10,
  policy = "policy.lua",
}
LUA
"$BATON" check "$T/service.lua" > /dev/null || fail "check refused the policy"
start_baton
grep -q "partial policy: init ran" "$T/sup.log" || fail "its own init did not run"
start_load
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart failed: $(tail -5 "$T/sup.log")"
active_is 2 || fail "generation 2 does not serve"
kill -9 "$(status_field 'generations[state=active].pid')"
wait_for 10 active_is 3 || fail "no recovery after a crash: $(tail -5 "$T/sup.log")"
stop_load
# The crash kills what generation 2 was serving: no count of load errors.
stop_baton
echo "ok: start, restart and recovery under the default's hooks; $LOAD"
