-- bluegreen: the new generation serves beside the old one for `window`
-- seconds before it takes over. Both accept from the same sockets. During
-- the window the policy watches the new one and rolls back (the new one
-- drains, the old one never stopped serving) if:
--   * it exits,
--   * its `check` fails (a wait_ready table, e.g. { http = "http://127.0.0.1:{generation}/health" }),
--   * its own error ratio (`errors` / `requests`, its lane of those
--     counters) goes over `max_error_ratio` once it served `min_requests`,
--   * someone runs `baton rollback`.
-- Otherwise it is promoted and the old one drains.
--
--   policy = { "bluegreen", window = 30, max_error_ratio = 0.01,
--              check = { http = "http://127.0.0.1:{generation}/health" } }

local steps = require("baton.steps")

local policy = {
  name = "bluegreen",
  defaults = { ready = false, watch = false, every = false, max_draining = false, signal = "TERM",
               max_memory = false, memory_interval = 60, start_limit = false,
               window = 30, interval = 0.5, check = false,
               errors = "http.errors", requests = "http.requests",
               max_error_ratio = false, min_requests = 100 },
}

local verdict = steps.verdict

function policy.restart(svc, old)
  local o = svc.options
  local new, why = steps.ready_new(svc)
  if not new then return nil, why end
  if old then
    svc:log("info", ("blue/green: generation %d serves beside %d for %gs"):format(new.id, old.id, o.window))
    local ends = svc:now() + o.window
    svc:rollback_window(true)
    while svc:now() < ends do
      local bad = verdict(svc, new)
      if bad then return nil, bad end
      if svc:rollback_requested(math.min(o.interval, ends - svc:now())) then
        return nil, "rolled back by hand (baton rollback)"
      end
    end
    svc:rollback_window(false)
    if svc:rollback_requested() then return nil, "rolled back by hand (baton rollback)" end
    local bad = verdict(svc, new)
    if bad then return nil, bad end
  end
  svc:promote(new)
  steps.drain(svc, old, { signal = o.signal, deadline = svc.config.drain_timeout })
  return new
end

return steps.standard(policy)
