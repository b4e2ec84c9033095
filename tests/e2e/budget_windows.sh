#!/usr/bin/env bash
# A budget stop may land on any instruction of a policy's hook, including
# inside the runtime's own steps that the policy called (svc:spawn,
# gen:drain, svc:promote). With an instruction budget of 1,000, a restart
# hook that burns one instruction fewer each time walks the stop across
# every one of those steps over 250 restarts. Before, some stops left a
# live generation nobody tracked (not in `baton status`, never drained) or
# a generation marked draining that no drain ever signalled (and `baton
# stop` never finished). Now those steps happen together or not at all:
# after the walk and the drains' deadline, one generation runs, the one
# `baton status` shows, and `baton stop` ends it in time.
. "$(dirname "$0")/lib.sh"

cat > "$T/policy.lua" <<'LUA'
local steps = require("baton.steps")
local p = {}
local k = 1000
function p.start(svc)
  local new, why = steps.ready_new(svc)
  if not new then return nil, why end
  svc:promote(new)
  return new
end
function p.restart(svc, old)
  svc:sleep(0) -- a fresh budget for this resume
  k = k - 4
  for _ = 1, k do end
  local new, why = svc:spawn()
  if not new then return nil, why end
  local ok, w = new:wait_ready(5)
  if not ok then return nil, w end
  svc:promote(new)
  if old then old:drain{ deadline = 2 } end
  return new
end
return steps.standard(p)
LUA
cat > "$T/service.lua" <<LUA
return {
  name = "e2e-budget-windows",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  ready_timeout = 5,
  drain_timeout = 2,
  policy = "policy.lua",
  policy_limits = { instructions = 1000, slice_ms = 100000 },
}
LUA
start_baton
stopped=0
for i in $(seq 1 250); do
    out=$(timeout 20 "$BATON" restart -s "$SOCK" 2>&1) || true
    case $out in *"exceeded its instruction budget"*) stopped=$((stopped + 1)) ;; esac
done
echo "250 restarts: $stopped stopped by the budget somewhere in the hook"
[ "$stopped" -gt 10 ] || fail "the budget stopped only $stopped restarts: the walk did not cover the hook"
sleep 3 # every drain has a deadline of 2 s
tracked=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"pid":[0-9]*,"state":"[a-z]*"' |
    grep -v exited | grep -o '[0-9]*' | sort -n | tr '\n' ' ')
# The keeper (status names it) is the supervisor's child too, not a
# generation.
keeper=$(keeper_of)
[ -n "$keeper" ] || fail "status names no keeper"
running=$(ps -o pid= --ppid "$BPID" | tr -d ' ' | grep -vx "$keeper" | sort -n | tr '\n' ' ')
[ "$tracked" = "$running" ] || fail "the supervisor's children ($running) are not the generations status shows ($tracked)"
[ "$(echo $running | wc -w)" = 1 ] || fail "generations still running after every drain's deadline: $running"
echo "ok: one generation runs, and it is the one status shows: $running"
t0=$(date +%s)
timeout 30 "$BATON" stop -s "$SOCK" > /dev/null || fail "baton stop did not finish"
wait "$BPID" || fail "the supervisor exited non-zero after stop"
BPID=""
echo "ok: budget stops anywhere in a hook leave no untracked or undrained generation; stop took $(($(date +%s) - t0)) s"
