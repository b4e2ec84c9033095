-- graceful: like default, but the old generation's drain ends as soon as it
-- is idle (its own `idle_metric` gauge, e.g. open connections, reaches 0),
-- instead of waiting for it to exit or for the deadline. For apps that keep
-- running after they stop accepting (long shutdown timers, idle keep-alive
-- pools): the supervisor decides from the live figure.
--
--   policy = { "graceful", idle_metric = "http.connections", deadline = 120 }

local steps = require("baton.steps")

local policy = {
  name = "graceful",
  defaults = { ready = false, watch = false, every = false, idle_metric = "http.connections",
               deadline = false, poll = 0.5 },
}

function policy.restart(svc, old)
  local o = svc.options
  local new, why = steps.ready_new(svc)
  if not new then return nil, why end
  svc:promote(new)
  if old then
    old:drain{ signal = "TERM", deadline = o.deadline or svc.config.drain_timeout,
               done = steps.idle(o.idle_metric), poll = o.poll }
  end
  return new
end

return steps.standard(policy)
