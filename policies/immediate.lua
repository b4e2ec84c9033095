-- immediate: the fastest hand-over, with no safety net. The old generation
-- is asked to drain the moment the new one is started, without waiting for
-- the new one to be ready. Connections that arrive meanwhile wait in the
-- shared accept queue (nothing is refused), but if the new generation fails
-- there is no old one to go back to: recovery starts a fresh one with the
-- crash backoff. Use it for apps that start fast and cannot run twice
-- (an exclusive lock, a single-instance worker).

local steps = require("baton.steps")

local policy = {
  name = "immediate",
  defaults = { ready = false, watch = false, every = false, max_draining = false, signal = "TERM",
               max_memory = false, memory_interval = 60, start_limit = false },
}

function policy.restart(svc, old)
  local o = svc.options
  local new, err = svc:spawn()
  if not new then return nil, err end
  steps.drain(svc, old, { signal = o.signal, deadline = svc.config.drain_timeout })
  local ok, why = new:wait_ready(steps.ready_opts(svc))
  if not ok then return nil, why end
  svc:promote(new)
  return new
end

return steps.standard(policy)
