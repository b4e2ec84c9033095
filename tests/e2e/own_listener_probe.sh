#!/usr/bin/env bash
# A tcp readiness probe of the service's own listener would always pass:
# the supervisor holds that socket, so the kernel completes the handshake
# whatever the app does. With an app that never accepts (it holds fd 3 and
# sleeps), such a probe is refused: by `baton check` and `baton run` when
# the service file names it (a built-in's `ready` option), and by the
# running supervisor when a policy's own code asks for it; a probe of the
# generation's own per_generation port still works.
. "$(dirname "$0")/lib.sh"

P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
NEVER='import time; time.sleep(600)' # holds LISTEN_FDS and never accepts

# 1. In the service file: refused before anything runs.
cat > "$T/static.lua" <<LUA
return {
  name = "own-probe",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:$P" },
  command = { "python3", "-c", "$NEVER" },
  policy = { "default", ready = { notify = false, tcp = "127.0.0.1:$P", timeout = 3 } },
}
LUA
want="ready.tcp 127.0.0.1:$P is the service's own listener 'http'"
rc=0
out=$("$BATON" check "$T/static.lua" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "check exited $rc: $out"
echo "$out" | grep -qF "$want" || fail "check said: $out"
echo "ok: baton check -> $out"
rc=0
out=$(timeout 20 "$BATON" run "$T/static.lua" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "run exited $rc: $out"
echo "$out" | grep -qF "$want" || fail "run said: $out"
echo "ok: baton run refused it, exit 1"

# 2. In a policy's own code (the file cannot say it): the running
# supervisor refuses the probe, so the start fails at once and says why.
cat > "$T/policy.lua" <<LUA
local default = require("baton.policies.default")
return {
  start = function(svc)
    local g, err = svc:spawn()
    if not g then return nil, err end
    local ok, why = g:wait_ready{ notify = false, tcp = "127.0.0.1:$P", timeout = 10 }
    if not ok then return nil, why end
    svc:promote(g)
    return g
  end,
  restart = default.restart,
}
LUA
sed 's|policy = .*|policy = "policy.lua",|' "$T/static.lua" > "$T/dynamic.lua"
"$BATON" check "$T/dynamic.lua" > /dev/null || fail "check of dynamic.lua should pass"
rc=0
start=$(date +%s)
out=$(timeout 20 "$BATON" run "$T/dynamic.lua" 2>&1) || rc=$?
took=$(($(date +%s) - start))
[ $rc -eq 1 ] || fail "run with the policy's probe exited $rc: $out"
echo "$out" | grep -q "failed to start: generation 1 cannot be checked: tcp 127.0.0.1:$P: it is the service's own listener 'http'" ||
    fail "run said: $out"
[ "$took" -lt 8 ] || fail "the refusal took ${took}s: it waited for the timeout"
echo "ok: a policy's probe of the shared listener refused at run time (${took}s)"

# 3. The generation's own port: a probe there reaches that generation and
# no other, and an app that never accepts is not ready.
cat > "$T/own.lua" <<LUA
return {
  name = "own-probe",
  control = "$SOCK",
  listen = { { "http", "tcp://127.0.0.1:$P" }, { "health", "tcp://127.0.0.1:0", per_generation = true } },
  command = { "python3", "-c", "$NEVER" },
  policy = { "default", ready = { notify = false, http = "http://127.0.0.1:{port:health}/", timeout = 2 } },
}
LUA
"$BATON" check "$T/own.lua" > /dev/null || fail "check of own.lua should pass"
rc=0
out=$(timeout 20 "$BATON" run "$T/own.lua" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "an app that never accepts was ready on its own port: exit $rc: $out"
echo "$out" | grep -q "failed its readiness check" || fail "run said: $out"
echo "ok: a probe of the generation's own port fails for an app that never accepts"

# 4. A tcp probe of the per_generation listener is as empty (baton bound it
# and passed it in listening): refused at check too.
sed 's|http = "http://127.0.0.1:{port:health}/"|tcp = "127.0.0.1:{port:health}"|' "$T/own.lua" > "$T/owntcp.lua"
rc=0
out=$("$BATON" check "$T/owntcp.lua" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "check of a tcp probe of {port:health} exited $rc: $out"
echo "$out" | grep -qF "is the per_generation listener 'health'" || fail "check said: $out"
echo "ok: a tcp probe of the per_generation listener is refused at check"
