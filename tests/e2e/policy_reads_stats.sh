#!/usr/bin/env bash
# A policy reads live figures from the stats region: the service total and
# the old and new generations' own counts, mid-restart, under load.
. "$(dirname "$0")/lib.sh"

cat > "$T/policy.lua" <<'LUA'
local default = require("baton.policies.default")
local p = {}
function p.restart(svc, old)
  local new = assert(svc:spawn())
  if not new:wait_ready(5) then return nil, "not ready" end
  svc:sleep(0.3) -- both serve from the one socket for a moment
  svc:log("info", ("figures: total=%d old=%d new=%d restarts=%d missing=%s"):format(
    svc.stats["http.requests"], old.stats["http.requests"], new.stats["http.requests"],
    svc.stats["baton.restarts"] or 0, tostring(svc.stats["no.such.metric"])))
  svc:promote(new)
  old:drain{ deadline = 10 }
  return new
end
p.start = default.start
return p
LUA
cat > "$T/service.lua" <<LUA
return {
  name = "policy-stats-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  policy = "policy.lua",
}
LUA
start_baton
start_load
"$BATON" restart -s "$SOCK" > /dev/null || fail "first restart"
"$BATON" restart -s "$SOCK" > /dev/null || fail "second restart"
stop_load
assert_no_load_errors 100
line=$(grep "figures:" "$T/sup.log" | tail -1)
echo "$line"
total=$(echo "$line" | sed 's/.*total=\([0-9]*\).*/\1/')
old=$(echo "$line" | sed 's/.* old=\([0-9]*\).*/\1/')
new=$(echo "$line" | sed 's/.* new=\([0-9]*\).*/\1/')
[ "$old" -gt 0 ] || fail "old generation's own count is 0"
[ "$total" -ge $((old + new)) ] || fail "total $total < old $old + new $new"
echo "$line" | grep -q "restarts=1 " || fail "the supervisor's own restart count is not visible"
echo "$line" | grep -q "missing=nil" || fail "an unknown metric is not nil"
stop_baton
echo "ok: a policy read live figures"
