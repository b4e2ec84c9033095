-- baton.steps: pieces the built-in policies share, for your policies too.
local _M = {}

-- A `done` predicate for gen:drain: the generation is idle once its own
-- figure of METRIC (a gauge such as "http.connections") is 0 or less.
function _M.idle(metric)
  return function(gen)
    local v = gen.stats[metric]
    return v ~= nil and v <= 0
  end
end

-- A `done` predicate for gen:drain that needs nothing of the app: the
-- generation is done once the kernel shows it no open connection on the
-- service's listeners (established or closing), and, when the app exports
-- the gauge METRIC (optional), that is 0 or less too; and it cannot accept
-- one meanwhile.
--
-- An app that still holds a listener may accept at any moment: killed
-- then, it would drop what it just accepted. Such an app (one process,
-- say one that ignores SIGTERM and keeps its listener) is stopped
-- (SIGSTOP) once it holds no connection: stopped, it cannot accept, and a
-- read of the kernel taken wholly while it was stopped says whether it
-- holds any. None: done (the drain then kills it, stopped). Some: it is
-- let go on (SIGCONT) and the drain goes on. An app of several processes
-- that holds a listener drains until it exits or closes it.
--
-- One read of the kernel dumps the connections before it walks the app's
-- fds: an app could accept a connection after the dump and close its
-- listener (or stop) before the walk, and that one read would show it
-- neither. So "no listener" or "stopped" must have been seen on an
-- earlier read than the one that shows no connection: from then on, the
-- app could not accept.
function _M.no_connections(metric)
  local closed_at = {} -- generation id -> the read that first showed it holding no listener
  local paused = {}    -- generation id -> { sent = read at SIGSTOP, seen = read that showed it stopped }
  local function busy(gen)
    if not metric then return false end
    local v = gen.stats[metric]
    return v ~= nil and v > 0
  end
  return function(gen)
    local read, id = gen.read, gen.id
    if gen.exited then return true end
    if (gen.listening or 0) > 0 then
      closed_at[id] = nil
      local p = paused[id]
      if gen.connections ~= 0 or (gen.processes or 0) ~= 1 or busy(gen) then
        if p then -- stopped with something to serve: let it go on
          gen:signal("CONT")
          paused[id] = nil
        end
        return false
      end
      if not p then
        if gen:signal("STOP") then paused[id] = { sent = read } end
        return false
      end
      if not gen.stopped then p.seen = nil return false end -- not yet, or let go by another
      if not p.seen then p.seen = read return false end
      return read ~= p.seen
    end
    if paused[id] then -- it closed its listener itself: let it go on
      gen:signal("CONT")
      paused[id] = nil
    end
    if not closed_at[id] then closed_at[id] = read end
    if gen.connections ~= 0 or read == closed_at[id] then return false end
    return not busy(gen)
  end
end

-- Drains OLD with OPTS (gen:drain's), first stopping the oldest draining
-- generations while as many as the policy's `max_draining` option allows
-- (if set) already drain: a restart every few seconds under long-lived
-- connections must not pile up generations without bound. Each one stopped
-- early is logged, with its connections and memory.
function _M.drain(svc, old, opts)
  if not old then return end
  local max = svc.options.max_draining
  if type(max) == "number" and max >= 1 then
    local draining = {}
    for _, g in ipairs(svc:generations()) do
      if g.draining and g ~= old then draining[#draining + 1] = g end
    end
    -- Oldest first; the one about to drain takes a place too.
    for i = 1, #draining + 1 - max do
      local g = draining[i]
      svc:log("warn", ("max_draining = %d: stopping generation %d now (%s connections, %d MiB resident)")
        :format(max, g.id, tostring(g.connections), math.floor((g.rss or 0) / 1048576)))
      g:kill()
    end
  end
  -- On a steered listener, a silent drain by default (docs/steering.md).
  if opts.quiet == nil and old:weight() ~= nil then
    local q = svc.options.quiet
    opts.quiet = (q == nil or q == false) and _M.QUIET or q
  end
  old:drain(opts)
end

-- Seconds a drain on a steered listener waits for quiet by default.
_M.QUIET = 10

-- When recoveries began, for the `start_limit` option (this policy
-- instance's): each is a crash, or a recovery that failed and is tried again.
local recoveries = {}

-- What to do when the serving generation died: give up if the policy's
-- `start_limit` ({ burst = N, interval = T }) saw N recoveries (crashes, or
-- recoveries that failed) within T seconds, as systemd's StartLimitBurst=
-- does: the service is then failed until `baton restart`. Else wait out
-- the backoff (0, 1, 2, 4 ... 30 s, per crash in a row), then
-- RESTART(svc, nil).
function _M.recover(svc, gen, restart)
  local limit = svc.options.start_limit
  if type(limit) == "table" then
    local now, kept = svc:now(), {}
    for _, at in ipairs(recoveries) do
      if now - at < limit.interval then kept[#kept + 1] = at end
    end
    kept[#kept + 1] = now
    recoveries = kept
    if #kept >= limit.burst then
      recoveries = {}
      local why = ("start_limit: %d crashes or failed recoveries within %gs"):format(#kept, limit.interval)
      svc:give_up(why)
      return nil, why
    end
  end
  local delay = svc:backoff(gen)
  if delay > 0 then
    svc:log("warn", ("generation %d died; starting another in %gs"):format(gen.id, delay))
    svc:sleep(delay)
  end
  return restart(svc, nil)
end

-- Readiness: the policy's `ready` option (seconds or a wait_ready table) or
-- the service's ready_timeout.
function _M.ready_opts(svc)
  local r = svc.options.ready
  if r then return r end
  return svc.config.ready_timeout
end

-- The first half of every restart: start a generation and wait until it is
-- ready. Returns it, or nil and why (then the runtime rolls back).
function _M.ready_new(svc)
  local new, err = svc:spawn()
  if not new then return nil, err end
  local ok, why = new:wait_ready(_M.ready_opts(svc))
  if not ok then return nil, why end
  return new
end

-- Bluegreen's and canary's checks of a new generation that serves beside
-- the old one: nil while it passes, else why it fails. It fails when it
-- exited, when its `check` option (a wait_ready table) fails, or when its
-- own error ratio (its lane of the `errors` and `requests` counters) goes
-- over `max_error_ratio` once it served `min_requests`.
function _M.verdict(svc, new)
  local o = svc.options
  if new.exited then return ("generation %d exited during its window"):format(new.id) end
  if o.check then
    local ok, why = new:probe_once(o.check, 1)
    if not ok then return ("generation %d failed its check: %s"):format(new.id, why) end
  end
  if o.max_error_ratio then
    local req, err = new.stats[o.requests] or 0, new.stats[o.errors] or 0
    if req >= o.min_requests and err / req > o.max_error_ratio then
      return ("generation %d error ratio %.4f over %g (%d of %d)"):format(
        new.id, err / req, o.max_error_ratio, err, req)
    end
  end
end

-- Fills in the hooks a policy leaves out, the way every built-in wants them:
-- start = a restart with nothing to drain, died = recover with backoff,
-- init = the watch/every triggers, stop = drain everything, and for a
-- policy with a `migrate` option, migrate = that option.
-- A policy without a restart hook gets the default's (the runtime's rule
-- for hooks left out), and so start and died are left to the default's
-- too: built on a restart it does not have, they could only fail.
function _M.standard(policy)
  -- Every built-in takes `quiet` (steps.drain reads it).
  policy.defaults = policy.defaults or {}
  if policy.defaults.quiet == nil then policy.defaults.quiet = false end
  if policy.restart then
    policy.start = policy.start or function(svc) return policy.restart(svc, nil) end
    policy.died = policy.died or function(svc, gen) return _M.recover(svc, gen, policy.restart) end
  end
  policy.init = policy.init or _M.triggers
  policy.stop = policy.stop or function(svc)
    for _, g in ipairs(svc:generations()) do
      g:drain{ signal = svc.options.signal or "TERM", deadline = svc.config.drain_timeout }
    end
  end
  -- A migrate hook only for a policy that takes a `migrate` option: without
  -- one, a blob of another schema is refused without being read.
  if policy.migrate == nil and policy.defaults and policy.defaults.migrate ~= nil then
    policy.migrate = _M.migrate
  end
  return policy
end

-- migrate(svc, blob, from, to): the policy's `migrate` option (a hook of
-- the same shape, say baton.state.steps{ ... }), or a refusal that says why.
function _M.migrate(svc, blob, from, to)
  local fn = svc.options.migrate
  if type(fn) ~= "function" then
    return nil, ("the blob has schema %d, the service expects %d (state.version), and the policy " ..
      "has no migrate hook"):format(from, to)
  end
  return fn(svc, blob, from, to)
end

-- Seconds between two reads of the serving generation's memory.
local MEMORY_POLL = 5

-- The `max_memory` option: restarts when the serving generation's
-- resident memory (all its processes) stays over MAX bytes, read on two
-- polls in a row, and at most once per INTERVAL seconds; never while a
-- restart is under way or queued.
function _M.memory_guard(svc, max, interval)
  local over, last = 0, nil
  svc:every(MEMORY_POLL, function(s)
    local g = s.active
    if not g or (g.rss or 0) <= max then over = 0 return end
    over = over + 1
    if over < 2 or (last and s:now() - last < interval) then return end
    local busy, queued = s:pending()
    if busy or queued > 0 then return end
    over, last = 0, s:now()
    s:restart(("memory over %d MiB (generation %d: %d MiB resident)")
      :format(math.floor(max / 1048576), g.id, math.floor(g.rss / 1048576)))
  end)
end

-- The triggers every built-in offers through its options:
--   watch = { "bin/app", "app.conf" }  restart when one of these files changes
--   every = 86400                       restart every so many seconds (skipped while
--                                       one is under way or queued)
function _M.triggers(svc)
  local o = svc.options
  local watch = o.watch
  if type(watch) == "string" then watch = { watch } end
  for _, path in ipairs(watch or {}) do
    local ok, err = svc:watch(path, function(s, p) s:restart(p .. " changed") end)
    if not ok then svc:log("error", err) end
  end
  if o.max_memory then _M.memory_guard(svc, o.max_memory, o.memory_interval or 60) end
  if o.every then
    -- Coalesced: a tick while a restart is under way or queued is skipped,
    -- so restarts longer than the period do not pile up without bound.
    svc:every(o.every, function(s)
      local busy, queued = s:pending()
      if busy or queued > 0 then
        s:log("info", ("every %gs: skipped, a restart is under way (%d queued)"):format(o.every, queued))
        return
      end
      s:restart(("every %gs"):format(o.every))
    end)
  end
end

return _M
