-- The default policy: blue/green in its simplest form.
--
-- Start the new generation beside the old one (both share the same
-- listening sockets), wait until it is ready, make it the serving one, then
-- ask the old one to drain: SIGTERM, and SIGKILL at the drain deadline. If
-- the new one exits or is not ready in time, return the reason: the runtime
-- drains the new one and the old one goes on serving (rollback).
--
-- Options: ready = seconds, or a wait_ready table ({ http = "...", ... });
-- watch = { files } restarts when one changes; every = seconds restarts on
-- a timer (every built-in takes these three).
--
-- Copy this file to write your own; docs/policy.md lists what `svc` and a
-- generation offer. The hooks steps.standard fills in (start, died, init,
-- stop, migrate) are also what any policy that leaves them out gets.

local steps = require("baton.steps")

local policy = {
  name = "default",
  defaults = { ready = false, watch = false, every = false, max_draining = false, signal = "TERM",
               max_memory = false, memory_interval = 60, start_limit = false },
}

function policy.restart(svc, old)
  local o = svc.options
  local new, why = steps.ready_new(svc)
  if not new then return nil, why end
  svc:promote(new)
  steps.drain(svc, old, { signal = o.signal, deadline = svc.config.drain_timeout })
  return new
end

return steps.standard(policy)
