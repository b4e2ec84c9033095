-- graceful: like default, but the old generation's drain ends as soon as
-- it holds no connection: the kernel's count of its open connections on
-- the service's listeners reaches 0 (and its own `idle_metric` gauge too,
-- when the app exports one). Then it is stopped, even if it ignored
-- SIGTERM. For apps that keep running after they stop accepting (long
-- shutdown timers, idle keep-alive pools), libbaton or not: the supervisor
-- decides from the live figure, every `poll` seconds (10 ms by default).
--
--   policy = { "graceful", deadline = 120 }
--   policy = { "graceful", idle_metric = "http.connections", max_draining = 2 }

local steps = require("baton.steps")

local policy = {
  name = "graceful",
  defaults = { ready = false, watch = false, every = false, max_draining = false, signal = "TERM",
               max_memory = false, memory_interval = 60, start_limit = false,
               idle_metric = false, deadline = false, poll = 0.01 },
}

function policy.restart(svc, old)
  local o = svc.options
  local new, why = steps.ready_new(svc)
  if not new then return nil, why end
  svc:promote(new)
  steps.drain(svc, old, { signal = o.signal, deadline = o.deadline or svc.config.drain_timeout,
                          done = steps.no_connections(o.idle_metric or nil), poll = o.poll })
  return new
end

return steps.standard(policy)
