#!/usr/bin/env bash
# Editing the policy file reloads it, the three ways a person or a tool
# edits a file: an append (same inode), `sed -i` (a new inode renamed over
# it) and a file moved over it. A broken edit is refused with a log line
# that names the file and the line, and the running policy stays. The
# supervisor runs from the service file's folder (`baton run service.lua`),
# as an operator starts it: the policy's path then has no folder in it.
. "$(dirname "$0")/lib.sh"

cat > "$T/policy.lua" <<'LUA'
local default = require("baton.policies.default")
return {
  restart = function(svc, old)
    svc:log("info", "restart under policy A")
    return default.restart(svc, old)
  end,
}
-- edits below
LUA
cat > "$T/service.lua" <<LUA
return {
  name = "policy-edits",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  policy = "policy.lua",
}
LUA
cd "$T"
start_baton service.lua
start_load

reloads() { grep -c "policy.lua changed: reloaded" "$T/sup.log" || true; }
refusals() { grep -c "policy.lua changed: reload refused" "$T/sup.log" || true; }
more_reloads() { [ "$(reloads)" -gt "$before" ]; }
more_refusals() { [ "$(refusals)" -gt "$before_refused" ]; }
# under LETTER: the next restart runs under policy LETTER.
under() {
    local n
    n=$(grep -c "restart under policy $1" "$T/sup.log" || true)
    "$BATON" restart -s "$SOCK" > /dev/null || fail "restart under $1 failed"
    [ "$(grep -c "restart under policy $1" "$T/sup.log" || true)" -gt "$n" ] ||
        fail "the restart did not run under policy $1"
}
under A

# 1. An append: the same inode, written in place.
before=$(reloads)
echo "-- appended" >> "$T/policy.lua"
wait_for 5 more_reloads || fail "an append did not reload the policy"
echo "ok: an append reloads"

# 2. sed -i: a new file renamed over the old one.
sleep 0.5 # one edit, one settle: the next one is a change of its own
before=$(reloads)
ino=$(stat -c %i "$T/policy.lua")
sed -i 's/policy A/policy B/' "$T/policy.lua"
[ "$(stat -c %i "$T/policy.lua")" != "$ino" ] || fail "sed -i kept the inode: this case tests nothing"
wait_for 5 more_reloads || fail "sed -i did not reload the policy"
under B
echo "ok: sed -i reloads"

# 3. A file moved over it.
sleep 0.5
before=$(reloads)
sed 's/policy B/policy C/' "$T/policy.lua" > "$T/policy.lua.new"
mv "$T/policy.lua.new" "$T/policy.lua"
wait_for 5 more_reloads || fail "a file moved over the policy did not reload it"
under C
echo "ok: a file moved over it reloads"

# 4. A broken edit: refused, logged with file and line, C keeps running.
sleep 0.5
before_refused=$(refusals)
echo "this is not lua" >> "$T/policy.lua"
wait_for 5 more_refusals || fail "a broken edit was not refused in the log"
grep "policy.lua changed: reload refused" "$T/sup.log" | tail -1 | grep -q "policy.lua:[0-9]*:" ||
    fail "the refusal names no file and line: $(grep 'reload refused' "$T/sup.log" | tail -1)"
echo "ok: broken edit -> $(grep 'reload refused' "$T/sup.log" | tail -1 | sed 's/.*error: //')"
under C
echo "ok: the running policy stayed"

stop_load
assert_no_load_errors 100
stop_baton
echo "ok: policy file edits, $LOAD"
