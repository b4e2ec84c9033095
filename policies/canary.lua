-- canary: the new generation takes a growing share of new connections, step
-- by step, on the service's steered listeners (docs/steering.md): at each
-- percentage of `steps` it serves that share for `interval` seconds while
-- bluegreen's checks watch it; after the last step it is promoted and the
-- old one drains (silently). It is rolled back (weight 0, then drained; the
-- old one takes every new connection again) if:
--   * it exits,
--   * its `check` fails (a wait_ready table),
--   * its own error ratio (`errors` / `requests`, its lane of those
--     counters) goes over `max_error_ratio` once it served `min_requests`,
--   * someone runs `baton rollback`.
-- `baton restart` returns after the last step (took over) or the rollback
-- (exit 1, with why). A weight is a share of new connections, not of
-- requests: a keep-alive client stays where it connected.
--
--   listen = { http = { "tcp://127.0.0.1:8080", steer = true } },
--   policy = { "canary", steps = { 1, 10, 50, 100 }, interval = 60,
--              max_error_ratio = 0.01, min_requests = 200 }

local steps = require("baton.steps")

local policy = {
  name = "canary",
  defaults = { ready = false, watch = false, every = false, max_draining = false, signal = "TERM",
               max_memory = false, memory_interval = 60, start_limit = false,
               steps = { 1, 10, 50, 100 }, interval = 30, poll = 0.5, check = false,
               errors = "http.errors", requests = "http.requests",
               max_error_ratio = false, min_requests = 100 },
}

-- The steps option, checked: ascending percentages from 0 to 100.
local function percentages(o)
  local out, last = {}, -1
  for i, p in ipairs(o.steps) do
    if type(p) ~= "number" or p < 0 or p > 100 or p < last then
      error(("canary: steps[%d] must be a percentage from 0 to 100, not below the one before"):format(i), 0)
    end
    out[#out + 1], last = p, p
  end
  if #out == 0 then error("canary: steps is empty", 0) end
  return out
end

-- The new generation gets PCT, the old one the rest.
local function split(new, old, pct)
  local ok, err = new:weight(pct)
  if ok then ok, err = old:weight(100 - pct) end
  return ok, err
end

function policy.restart(svc, old)
  local o = svc.options
  local pcts = percentages(o)
  local new, why = steps.ready_new(svc)
  if not new then return nil, why end
  if old and old:alive() then
    if new:weight() == nil then
      return nil, "canary needs a steered listener (listen = { NAME = { ADDRESS, steer = true } })"
    end
    svc:rollback_window(true)
    local function back(reason)
      -- Every new connection to the old one again; the runtime drains the
      -- canary (weight 0 already, then the signal once it holds none).
      split(new, old, 0)
      svc:rollback_window(false)
      return nil, reason
    end
    for _, pct in ipairs(pcts) do
      local ok, err = split(new, old, pct)
      if not ok then return back(("canary: weight %g%%: %s"):format(pct, err)) end
      svc:log("info", ("canary: generation %d takes %g%% of new connections for %gs"):format(new.id, pct, o.interval))
      local ends = svc:now() + o.interval
      repeat
        local bad = steps.verdict(svc, new)
        if bad then return back(("canary at %g%%: %s"):format(pct, bad)) end
        if svc:rollback_requested(math.max(0, math.min(o.poll, ends - svc:now()))) then
          return back(("canary at %g%%: rolled back by hand (baton rollback)"):format(pct))
        end
      until svc:now() >= ends
    end
    svc:rollback_window(false)
    if svc:rollback_requested() then return back("rolled back by hand (baton rollback)") end
  end
  svc:promote(new)
  steps.drain(svc, old, { signal = o.signal, deadline = svc.config.drain_timeout })
  return new
end

return steps.standard(policy)
