#!/usr/bin/env bash
# A migrate hook that calls svc:spawn() (which needs a migration, which
# runs the hook again ...). Before, each migration ran as a budgeted hook
# inside the budget of the hook that called svc:spawn; the nesting ran out
# ("nested too deep") and left the runtime believing policy code was still
# running, so every later task was put off forever: the supervisor spun and
# answered nothing, SIGTERM included. Now a migration runs in the caller's
# own coroutine and budget, and svc:spawn inside it is an error: the
# restart rolls back with that reason, and the supervisor answers, restarts
# and stops as before, with no failed request.
. "$(dirname "$0")/lib.sh"

cat > "$T/nested.lua" <<'LUA'
local p = {}
for k, v in pairs(require("baton.policies.handover")) do p[k] = v end
function p.migrate(svc)
  svc:spawn()
  return nil, "refused"
end
return p
LUA
counter_service 1 1 '"nested.lua"'
start_baton
start_load --path /load
"$BATON" restart -s "$SOCK" > /dev/null || fail "the first restart (storing the state) failed"
serving=$(active_generation)

counter_service 2 1 '"nested.lua"'
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload to state.version 2"
for i in 1 2 3; do
    rc=0
    out=$(timeout 20 "$BATON" restart -s "$SOCK" 2>&1) || rc=$?
    [ $rc -eq 1 ] || fail "restart $i exited $rc: $out"
    echo "$out" | grep -q "svc:spawn() inside a migrate hook" || fail "restart $i: $out"
    timeout 5 "$BATON" status -s "$SOCK" > /dev/null || fail "status after restart $i"
    active_is "$serving" || fail "generation $serving no longer serves"
done
echo "ok: nested spawn refused three times: $out"
counter_service 1 1 '"nested.lua"'
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload back to state.version 1"
timeout 20 "$BATON" restart -s "$SOCK" > /dev/null || fail "a restart afterwards failed"
stop_load
assert_no_load_errors 50
timeout 30 "$BATON" stop -s "$SOCK" > /dev/null || fail "baton stop did not finish"
wait "$BPID" || fail "the supervisor exited non-zero"
BPID=""
echo "ok: a migration that spawns is refused and the supervisor keeps working, $LOAD"
