-- gradual: the old generation hands its connections over gradually, the
-- way Envoy's gradual drain does, but as a window baton tells the app about
-- rather than a timer inside the app. After the new generation is promoted
-- the old one keeps serving for `window` seconds while an app using
-- libbaton closes each keep-alive connection once baton_drain_progress()
-- (0 to 1 across the window) passes a random threshold of the connection's
-- own, so a fraction p of them has moved at progress p; clients
-- reconnect, and the shared socket hands them to whichever generation
-- accepts, more and more often the new one. Then SIGTERM, and SIGKILL at
-- `deadline` after it. Apps that do not read the progress simply drain at
-- the end of the window.
--
--   policy = { "gradual", window = 30 }

local steps = require("baton.steps")

local policy = {
  name = "gradual",
  defaults = { ready = false, watch = false, every = false, max_draining = false, signal = "TERM",
               max_memory = false, memory_interval = 60, start_limit = false,
               window = 30, deadline = false },
}

function policy.restart(svc, old)
  local o = svc.options
  local new, why = steps.ready_new(svc)
  if not new then return nil, why end
  svc:promote(new)
  if old then
    steps.drain(svc, old, { gradual = o.window, signal = o.signal, deadline = o.deadline or svc.config.drain_timeout })
  end
  return new
end

return steps.standard(policy)
