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
-- generation offer.

local steps = require("baton.steps")

local policy = { name = "default", defaults = { ready = false, watch = false, every = false } }

function policy.restart(svc, old)
  local new, err = svc:spawn()
  if not new then return nil, err end

  local ok, why = new:wait_ready(steps.ready_opts(svc))
  if not ok then return nil, why end

  svc:promote(new)
  if old then
    old:drain{ signal = "TERM", deadline = svc.config.drain_timeout }
  end
  return new
end

-- Triggers from the options (watch = { files }, every = seconds).
policy.init = steps.triggers

-- The first generation: the same as a restart with nothing to drain.
function policy.start(svc)
  return policy.restart(svc, nil)
end

-- The serving generation exited on its own: start another, after a backoff
-- that grows with each crash in a row (0, 1, 2, 4 ... 30 s).
function policy.died(svc, gen)
  return steps.recover(svc, gen, policy.restart)
end

-- Stopping: drain everything at once.
function policy.stop(svc)
  for _, g in ipairs(svc:generations()) do
    g:drain{ signal = "TERM", deadline = svc.config.drain_timeout }
  end
end

return policy
