#!/usr/bin/env bash
# State migrated in Lua from schema 1 to 2 during a restart under load, and
# a migration the policy refuses (2 to 3): that restart rolls back, the old
# generation carries on, and the load client sees no error at all; every
# hit answered is still counted at the end.
. "$(dirname "$0")/lib.sh"

# A policy of one's own: the built-in handover plus a migrate hook made of
# steps (baton.state), as docs/state.md shows.
cat > "$T/migrating.lua" <<'LUA'
local state = require("baton.state")
local policy = {}
for k, v in pairs(require("baton.policies.handover")) do policy[k] = v end
policy.name = "migrating"
-- 1 -> 2 adds a SINCE column (0: from before it existed); 2 -> 3 is refused.
policy.migrate = state.steps{
  [1] = function(blob) return (blob:gsub("([^\n]+)\n", "%1 0\n")) end,
  [2] = function() return nil, "schema 3 is not released yet" end,
}
return policy
LUA

counter_service 1 1 '"migrating.lua"'
start_baton
start_load --path /load
for _ in 1 2 3; do curl -sf "http://127.0.0.1:$PORT/old" > /dev/null; done

# Deploy schema 2: the new build and the service file that expects it.
counter_service 2 2 '"migrating.lua"'
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload to schema 2 refused"
out=$("$BATON" restart -s "$SOCK" 2>&1) || fail "restart to schema 2: $out"
grep -q "state migrated from schema 1 to 2" "$T/sup.log" || fail "no migration logged"
line=$(curl -sf "http://127.0.0.1:$PORT/_count" | grep '^/old ')
[ "$line" = "/old 3 0" ] || fail "after the migration /old reads '$line', want '/old 3 0'"
echo "ok: migrated 1 -> 2: $out; /old reads '$line'"
curl -sf "http://127.0.0.1:$PORT/new" > /dev/null
serving=$(active_generation)

# Schema 3: the policy refuses; the restart rolls back with the reason.
counter_service 3 2 '"migrating.lua"'
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload to schema 3 refused"
rc=0
out=$("$BATON" restart -s "$SOCK" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "refused migration: restart exited $rc: $out"
echo "$out" | grep -q "migration from schema 2 to 3 refused: step 2 -> 3: schema 3 is not released yet" ||
    fail "refused migration: unexpected message: $out"
active_is "$serving" || fail "generation $serving no longer serves after the refusal"
grep -q "generation $serving resumes" "$T/sup.log" || fail "the old generation was not told to resume"
echo "ok: refused: $out"

# The old generation took writes again after it resumed, and a later
# restart (back on schema 2) carries them.
curl -sf "http://127.0.0.1:$PORT/new" > /dev/null
counter_service 2 2 '"migrating.lua"'
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload back to schema 2 refused"
out=$("$BATON" restart -s "$SOCK" 2>&1) || fail "restart after the refusal: $out"
[ "$(count_of /new)" = 2 ] || fail "/new counts $(count_of /new), want 2"

stop_load
assert_no_load_errors 1000
have=$(count_of /load)
[ "$have" = "$(load_field ok)" ] || fail "the counter says $have hits, the client got $(load_field ok) answers"
echo "ok: counter $have == answers, across a migration and a refusal"
stop_baton
