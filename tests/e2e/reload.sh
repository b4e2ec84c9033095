#!/usr/bin/env bash
# Live reload of the policy, under load: a restart under way finishes under
# the policy it started with; a policy that does not compile, one that does
# not validate, and a service file whose listeners changed are refused with
# file, line and reason while the service keeps serving; an edit of the
# policy file is picked up by itself.
. "$(dirname "$0")/lib.sh"

policy() { # policy NAME [SLEEP]: a policy that says its name when it restarts
    cat > "$T/policy.lua.new" <<LUA
local default = require("baton.policies.default")
return {
  start = default.start,
  restart = function(svc, old)
    svc:sleep(${2:-0})
    svc:log("info", "restart under policy $1")
    return default.restart(svc, old)
  end,
}
LUA
    mv "$T/policy.lua.new" "$T/policy.lua"
}
policy A 1
cat > "$T/service.lua" <<LUA
return {
  name = "reload-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  policy = "policy.lua",
}
LUA
start_baton
start_load

# A restart under A, with a reload to B while it runs.
"$BATON" restart -s "$SOCK" > "$T/r1" 2>&1 &
R1=$!
sleep 0.3
policy B
out=$("$BATON" reload -s "$SOCK") || fail "reload to B refused: $out"
echo "$out" | grep -q "reloaded .*policy.lua" || fail "reload said: $out"
wait $R1 || fail "the restart under way failed: $(cat "$T/r1")"
grep -q "restart under policy A" "$T/sup.log" || fail "the restart under way did not finish under A"
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart under B"
grep -q "restart under policy B" "$T/sup.log" || fail "the next restart did not use B"
echo "ok: in-flight restart kept A, the next used B"

expect_refused() { # expect_refused WHAT PATTERN
    local out rc=0
    out=$("$BATON" reload -s "$SOCK" 2>&1) || rc=$?
    [ $rc -eq 1 ] || fail "$1: reload exited $rc: $out"
    echo "$out" | grep -q "$2" || fail "$1: want '$2' in: $out"
    echo "ok: $1 refused -> $out"
}
good=$(cat "$T/policy.lua")
printf 'local p = {\n  restart = function(svc, old)\n    return nil\n  end\n' > "$T/policy.lua"
expect_refused "syntax error" "policy.lua:5: '}' expected"
printf 'return { restrat = function() end }\n' > "$T/policy.lua"
expect_refused "misspelled hook" "unknown hook 'restrat'"
printf 'error("refuses to load")\n' > "$T/policy.lua"
expect_refused "error while loading" "policy.lua:1: refuses to load"
echo "$good" > "$T/policy.lua"
sed -i 's|tcp://127.0.0.1:0|tcp://127.0.0.1:1|' "$T/service.lua"
expect_refused "listeners changed" "key 'listen' changed: it cannot change while the service runs"
sed -i 's|tcp://127.0.0.1:1|tcp://127.0.0.1:0|' "$T/service.lua"
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart after refused reloads"
[ "$(grep -c "restart under policy B" "$T/sup.log")" -ge 2 ] || fail "B was not kept after refusals"

# An edit of the policy file reloads by itself.
auto_reloads() { grep -c "policy.lua changed: reloaded" "$T/sup.log" || true; }
more_auto_reloads() { [ "$(auto_reloads)" -gt "$before" ]; }
sleep 0.5 # let the watcher settle on the edits above
before=$(auto_reloads)
policy C
wait_for 5 more_auto_reloads || fail "no automatic reload"
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart under C"
grep -q "restart under policy C" "$T/sup.log" || fail "the automatic reload did not take"
echo "ok: automatic reload on file change (reloads logged before: $before)"

stop_load
assert_no_load_errors 1000
stop_baton
echo "ok: reload, $LOAD"
