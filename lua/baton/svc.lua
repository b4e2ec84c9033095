-- baton.svc: the service, as a policy sees it (`svc` in every hook).
--
-- Like a generation, `svc` is a handle: a protected, read-only view whose
-- methods act on the runtime. What it shows (svc.active, svc.config,
-- svc.options, svc.stats) is read from the runtime each time; a policy
-- cannot replace any of it for the runtime. The methods run in the
-- calling hook's coroutine, so under its budget.

local Gen = require("baton.gen")
local sandbox = require("baton.sandbox")

local text = sandbox.text

local M = {}

local function need_number(what, v, zero_ok)
  if type(v) ~= "number" or v ~= v or v < 0 or (v == 0 and not zero_ok) then
    error(("%s must be a %s number of seconds, got %s"):format(what,
      zero_ok and "non-negative" or "positive", text(v)), 3)
  end
end

-- Starts a generation. It receives the listeners, the fd store and the
-- state blob, checked and, when the service expects another schema,
-- migrated. Returns it, or nil and why (a refused state blob included).
function M.spawn(rt)
  if rt.stopping then return nil, "the supervisor is stopping" end
  if rt.migrating and rt.migrating == coroutine.running() then
    error("svc:spawn() inside a migrate hook: a migration returns the new blob", 3)
  end
  local state, why = rt:state_for_spawn()
  if not state then return nil, why end
  -- The process and its record come together: a budget stop in between
  -- would leave a generation nobody drains.
  local g, err = sandbox.critical(function()
    local id, pid, ports = rt.core.spawn(state)
    if not id then return nil, pid end
    local gen = Gen.new(rt, id, pid, rt:stats_view(id), ports)
    -- On steered listeners, the weight the core gave it (nil: none). Asked
    -- only where one is steered: every other restart crosses nothing more.
    if rt:steered() then gen.share = rt.core.steer(id) end
    rt.gens[id] = gen
    if rt.current then table.insert(rt.current.spawned, gen) end
    return gen
  end)
  if not g then return nil, err end
  rt.core.log("info", ("generation %d started (pid %d)"):format(g.id, g.pid))
  return g.handle
end

-- Makes G the generation that serves. The previous one keeps running until
-- the policy drains it.
function M.promote(rt, h)
  local g = Gen.of(h)
  if not g then error("promote() needs a generation", 3) end
  if not g.ready or g.exited then
    local why = g.exited and ("generation %d has exited (%s)"):format(g.id, g:exit_reason())
      or ("generation %d is not ready (no READY=1, and no readiness check of wait_ready passed)"):format(g.id)
    rt.last_promote_error = why -- the rollback's reason, if the policy does not give its own
    return nil, why
  end
  sandbox.critical(function()
    rt.active = g
    g.promoted_at = rt:now()
    g.state = "active"
    -- It serves: on steered listeners it gets new connections too, unless
    -- the policy already gave it a share (a canary's steps).
    if g.share == 0 then g:set_weight(100) end
  end)
  rt.core.log("info", ("generation %d promoted: it serves"):format(g.id))
  return true
end

-- Each listener's accept queue, from the kernel: { NAME = { queue = n,
-- max_queue = n } }. A copy: what the policy changes there stays there.
function M.listeners(rt)
  local out = {}
  for name, l in pairs(rt:figures(nil).listeners or {}) do
    out[name] = { queue = l.queue, max_queue = l.max_queue }
  end
  return out
end

-- Live generations, oldest first.
function M.generations(rt)
  local out = {}
  for _, g in ipairs(rt:live()) do out[#out + 1] = g.handle end
  return out
end

-- Opens (or closes) a window in which `baton rollback` is honoured: the
-- previous generation still serves, so going back to it is possible. The
-- runtime closes it when the procedure ends, whatever way it ends.
function M.rollback_window(rt, open)
  local was = rt.window_open
  rt.window_open = open and true or false
  if rt.window_open and not was then
    rt.core.log("info", "rollback window open: `baton rollback` now returns to generation " ..
      (rt.active and rt.active.id or 0))
  end
end

-- Waits up to SECONDS for `baton rollback`; true if one came (or is pending).
function M.rollback_requested(rt, seconds)
  if rt.rollback_req == nil and type(seconds) == "number" and seconds > 0 then
    rt:wait("rollback", seconds)
  end
  return rt.rollback_req ~= nil
end

function M.log(rt, level, msg) rt.core.log(text(level), text(msg)) end
function M.now(rt) return rt:now() end
function M.sleep(rt, seconds)
  need_number("sleep", seconds, true)
  return rt:sleep(seconds)
end

-- Seconds to wait before the next crash restart: 0, 1, 2, 4 ... 30. The
-- count starts again once a generation has served for a minute.
function M.backoff(rt, died)
  local g = Gen.of(died)
  if g and g.promoted_at and rt:now() - g.promoted_at > 60 then rt.crashes = 0 end
  rt.crashes = rt.crashes + 1
  if rt.crashes == 1 then return 0 end
  return math.min(30, 2 ^ (rt.crashes - 2))
end

-- Gives up recovering the service (a crash loop, say): no further
-- recovery is tried, `baton status` shows it failed with WHY, and an event
-- says so, until `baton restart` starts a generation again.
function M.give_up(rt, why)
  rt:give_up(why ~= nil and text(why) or "the policy gave up")
end

-- Triggers: set up by the policy's init hook, torn down on reload ----------

-- Queues a restart, as SIGHUP or `baton restart` would (nobody waits for
-- the answer; it is logged).
function M.restart(rt, reason)
  rt:restart(nil, reason ~= nil and text(reason) or nil)
end

-- Whether a procedure (a restart, the start, a recovery) is under way, and
-- how many restarts are queued behind it: a scheduled restart can skip
-- instead of piling up behind a long one.
function M.pending(rt)
  return rt.busy and true or false, rt.restarts_queued
end

-- Calls FN(svc, path) whenever the file at PATH (relative to the service
-- file) changes: written, or replaced by a rename.
function M.watch(rt, path, fn)
  if type(path) ~= "string" then error("watch: path must be a string", 3) end
  if type(fn) ~= "function" then error("watch: needs a function to call", 3) end
  if path:sub(1, 1) ~= "/" and rt.cfg.dir and rt.cfg.dir ~= "." then path = rt.cfg.dir .. "/" .. path end
  -- The watch and its undo are made together (see Runtime:repeating). A
  -- watch of the same path from before a reload carries on (Runtime:init).
  local changed
  local id, err = sandbox.critical(function()
    local wid
    wid, changed = rt:take_parked(path)
    if not wid then
      local werr
      wid, werr = rt.core.watch(path)
      if not wid then return nil, werr end
    end
    rt.watch_fns[wid] = function() rt:trigger("watch " .. path, fn, path) end
    rt.triggers[#rt.triggers + 1] = function(park)
      if park then return rt:park_watch(path, wid) end
      rt.watch_fns[wid] = nil
      rt.core.unwatch(wid)
    end
    return wid
  end)
  if id and changed then rt.watch_fns[id]() end
  if not id then return nil, ("cannot watch %s: %s"):format(path, err) end
  return true
end

-- Calls FN(svc) every SECONDS.
function M.every(rt, seconds, fn)
  need_number("every", seconds)
  if type(fn) ~= "function" then error("every: needs a function to call", 3) end
  rt:repeating(seconds, function() rt:trigger("every " .. seconds .. "s", fn) end)
  return true
end

-- Calls FN(svc) when PREDICATE(svc) becomes true (checked every SECONDS),
-- once per time it turns true: a threshold on live figures, say
-- svc:when(5, function(s) return (s.stats["http.errors"] or 0) > 1000 end, ...).
function M.when(rt, seconds, predicate, fn)
  need_number("when", seconds)
  if type(predicate) ~= "function" or type(fn) ~= "function" then
    error("when: needs a predicate and a function to call", 3)
  end
  local was = false
  rt:repeating(seconds, function()
    rt:task("when", function()
      local ok, now = rt:call_hook("when", predicate, rt.svc)
      now = ok and now and true or false
      if now and not was then rt:trigger("when", fn) end
      was = now
    end)
  end)
  return true
end

-- What a policy reads of `svc`.
local FIELDS = {
  active = function(rt) return rt.active and rt.active.handle end,
  config = function(rt) return rt.config_view end,
  options = function(rt) return rt.options end,
  stats = function(rt) return rt.service_stats end,
}

-- The handle for runtime RT.
function M.handle(rt)
  local methods = {}
  for name, fn in pairs(M) do
    if name ~= "handle" then methods[name] = function(_, ...) return fn(rt, ...) end end
  end
  return setmetatable({}, {
    __index = function(_, k)
      local f = FIELDS[k]
      if f then return f(rt) end
      return methods[k]
    end,
    __newindex = function(_, k) error(("svc is read-only (field '%s')"):format(text(k)), 2) end,
    __metatable = "baton service",
  })
end

return M
