#!/usr/bin/env bash
# `baton reload --dry-run`: the running supervisor loads and checks the
# service file and its policy as a reload would, against what cannot change
# while it runs, and applies nothing (no new policy, no event). The files
# are reached through symlinks from another folder, so that editing them
# does not reload them by itself (the watcher sees the links' folder).
. "$(dirname "$0")/lib.sh"

mkdir -p "$T/real" "$T/link"
policy() { # policy LETTER
    cat > "$T/real/policy.lua" <<LUA
local default = require("baton.policies.default")
return {
  restart = function(svc, old)
    svc:log("info", "restart under policy $1")
    return default.restart(svc, old)
  end,
}
LUA
}
service() { # service ADDRESS
    cat > "$T/real/service.lua" <<LUA
return {
  name = "dry-run",
  control = "$SOCK",
  listen = { http = "$1" },
  command = { "$HELLO" },
  policy = "policy.lua",
}
LUA
}
policy A
service "tcp://127.0.0.1:0"
ln -s ../real/service.lua "$T/link/service.lua"
ln -s ../real/policy.lua "$T/link/policy.lua"
start_baton "$T/link/service.lua"
under() { # under LETTER: the next restart runs under it
    local n
    n=$(grep -c "restart under policy $1" "$T/sup.log" || true)
    "$BATON" restart -s "$SOCK" > /dev/null || fail "restart failed"
    [ "$(grep -c "restart under policy $1" "$T/sup.log" || true)" -gt "$n" ] || fail "the restart did not run under $1"
}
reloads() { "$BATON" events -s "$SOCK" --json | python3 -c '
import json, sys
print(sum(1 for e in json.load(sys.stdin) if e["kind"] == "reload"))'; }
dry() { # dry WANT_RC PATTERN
    local rc=0 out
    out=$("$BATON" reload --dry-run -s "$SOCK" 2>&1) || rc=$?
    [ $rc -eq "$1" ] || fail "reload --dry-run exited $rc, want $1: $out"
    echo "$out" | grep -q "$2" || fail "reload --dry-run said '$out', want '$2'"
    echo "ok: dry run -> $out"
}
under A

# A valid policy: it would be taken; nothing is.
policy B
dry 0 "would be taken; nothing applied"
under A
[ "$(reloads)" = 0 ] || fail "a dry run recorded a reload"
"$BATON" reload -s "$SOCK" > /dev/null || fail "the reload itself was refused"
under B
echo "ok: the dry run applied nothing; the reload then took B"

# A broken policy: refused with its file and line.
echo "this is not lua" >> "$T/real/policy.lua"
dry 1 "policy.lua:[0-9]*:"
policy B

# A change only the running supervisor can judge: `baton check` passes it.
service "tcp://127.0.0.1:1"
"$BATON" check "$T/link/service.lua" > /dev/null || fail "check refused the new address"
dry 1 "key 'listen' changed: it cannot change while the service runs"
service "tcp://127.0.0.1:0"
[ "$(reloads)" = 1 ] || fail "dry runs recorded reloads: $(reloads)"
under B
stop_baton
