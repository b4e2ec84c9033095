#!/usr/bin/env bash
# A policy that misbehaves in every way a script can: an endless loop (even
# one that catches its own errors), error(), a runaway allocation, a hook
# that waits forever. Each is stopped within its budget and the restart is
# rolled back, `baton status` answers within 100 ms all the while, the
# service serves without a single failed request, and a sane restart works
# afterwards.
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
start_baton
start_load
serving=$(active_generation)

# The supervisor's own answer time: one client polling the control socket
# every 2 ms from before the restart until after it (no process start per
# call, which would measure exec, not the supervisor).
start_poller() {
    rm -f "$T/stop" "$T/worst" "$T/polling"
    python3 - "$SOCK" "$T/stop" "$T/polling" > "$T/worst" <<'PY' &
import os, socket, sys, time
sock, stop, polling = sys.argv[1], sys.argv[2], sys.argv[3]
worst, n = 0.0, 0
while not os.path.exists(stop):
    t = time.perf_counter()
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(5)
    c.connect(sock)
    c.sendall(b'{"cmd":"status"}\n')
    data = b""
    while not data.endswith(b"\n"):
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    c.close()
    if b'"ok":true' not in data:
        print("99999 0")
        sys.exit()
    worst = max(worst, (time.perf_counter() - t) * 1000)
    n += 1
    if n == 1:
        open(polling, "w").close()
    time.sleep(0.002)
print(int(worst + 0.999), n)
PY
    POLLER=$!
    wait_for 10 test -e "$T/polling" || fail "the status poller did not start"
}

stop_poller() {
    touch "$T/stop"
    wait "$POLLER"
    read -r WORST POLLS < "$T/worst"
}

expect() {
    local what=$1 pattern=$2 out rc=0
    start_poller
    out=$("$BATON" restart -s "$SOCK" 2>&1) || rc=$?
    stop_poller
    [ $rc -eq 1 ] || fail "$what: restart exited $rc: $out"
    echo "$out" | grep -q "$pattern" || fail "$what: want '$pattern' in: $out"
    # A hook stopped by its budget ends the restart within milliseconds, so
    # the count of answers says nothing; the slowest one is what must be short.
    [ "$POLLS" -ge 1 ] || fail "$what: the poller got no answer ($(cat "$T/worst"))"
    [ "$WORST" -lt 100 ] || fail "$what: baton status took $WORST ms"
    [ "$(active_generation)" = "$serving" ] || fail "$what: generation $serving stopped serving"
    echo "ok: $what -> $out (slowest of $POLLS status answers: ${WORST} ms)"
}

expect "endless loop" "exceeded its instruction budget"
expect "error()" "deliberate failure"
expect "runaway allocation" "exceeded its memory cap"
expect "waits forever" "did not finish within 2s"

"$BATON" restart -s "$SOCK" > /dev/null || fail "a sane restart after all that failed"
stop_load
assert_no_load_errors 1000
grep -q "traceback" "$T/sup.log" || fail "no traceback logged"
n=$("$BATON" stats -s "$SOCK" --json | tr -d ' \n' | grep -o '"name":"baton.policy_errors","type":"counter","value":[0-9]*' | sed 's/.*://')
[ "$n" = 4 ] || fail "baton.policy_errors is $n, want 4"
stop_baton
echo "ok: hostile policies contained, $LOAD"
