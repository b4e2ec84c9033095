-- graceful: like default, but the old generation's drain ends as soon as it
-- is idle (its own `idle_metric` gauge, e.g. open connections, reaches 0),
-- instead of waiting for it to exit or for the deadline. For apps that keep
-- running after they stop accepting (long shutdown timers, idle keep-alive
-- pools): the supervisor decides from the live figure.
--
--   policy = { "graceful", idle_metric = "http.connections", deadline = 120 }

local default = require("baton.policies.default")
local steps = require("baton.steps")

local policy = {
  name = "graceful",
  defaults = { ready = false, watch = false, every = false, idle_metric = "http.connections", deadline = false, poll = 0.5 },
}

function policy.restart(svc, old)
  local o = svc.options
  local new, err = svc:spawn()
  if not new then return nil, err end
  local ok, why = new:wait_ready(steps.ready_opts(svc))
  if not ok then return nil, why end
  svc:promote(new)
  if old then
    old:drain{ signal = "TERM", deadline = o.deadline or svc.config.drain_timeout,
               done = steps.idle(o.idle_metric), poll = o.poll }
  end
  return new
end

function policy.start(svc) return policy.restart(svc, nil) end
function policy.died(svc, gen) return steps.recover(svc, gen, policy.restart) end
policy.stop = default.stop
policy.init = default.init

return policy
