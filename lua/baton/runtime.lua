-- baton.runtime: runs the policy on the supervisor's event loop.
--
-- The C core does the mechanics (processes, sockets, timers) and reports
-- events; this module turns them into a small world a policy can read top
-- to bottom: a restart is a coroutine that calls gen:wait_ready(30) and
-- simply continues when the generation is ready, times out, or dies.
--
-- The pieces, one concern each:
--   baton.sched       tasks, hooks under the budget, waits, timers, the lock
--   baton.gen         a generation's record (its lifecycle lives here only)
--   baton.svc         the service API a policy calls
--   baton.state_gate  which state blob a new generation may receive
--   baton.sandbox     what policy code can reach
--   baton.history     what happened (`baton events`)
--   this file         procedures (start, restart, died, stop, rollback,
--                     reload), the events the core reports, the view that
--                     `baton status` and /ready read
--
-- Rules the runtime keeps whatever the policy does:
--   * procedures (start, restart, recovery) run one at a time, and the lock
--     is released on every path;
--   * svc:promote(new) is the commit point: a procedure that promoted a new
--     live generation took over; one that did not (it returned nil, why,
--     raised an error, was stopped, or just returned) rolls back: every
--     generation it spawned that is not serving drains, the serving one is
--     untouched;
--   * a hook over its budget or timeout is stopped; a policy error is
--     logged with its traceback and counted;
--   * no policy value is ever used outside the policy's budget except
--     through type() and raw access (baton.sandbox.text).

local Gen = require("baton.gen")
local History = require("baton.history")
local Svc = require("baton.svc")
local config = require("baton.config")
local sandbox = require("baton.sandbox")

local _M = {}

local Runtime = {}
Runtime.__index = Runtime
for _, mixin in ipairs({ require("baton.sched"), require("baton.state_gate") }) do
  for k, v in pairs(mixin) do Runtime[k] = v end
end

local text = sandbox.text
local traceback = debug.traceback

-- What the runtime asks of the C core: the whole boundary, in one list.
-- src/lua/core.c implements it; baton.testkit fakes it; runtime.new()
-- refuses a core that offers a function more or less, so neither drifts.
_M.CORE = {
  spawn = "spawn(state) -> id, pid, ports | nil, err   state: 'stored' | 'none' | 'staged'",
  signal = "signal(id, name, group) -> true | nil, err",
  timer = "timer(seconds) -> tid   (fires as the event 'timer')",
  cancel = "cancel(tid)",
  probe = "probe(host, port, path|nil, timeout) -> id | nil, err   (answer: event 'probe')",
  watch = "watch(path) -> id | nil, err   (changes: event 'watch')",
  unwatch = "unwatch(id)",
  log = "log(level, message)",
  reply = "reply(req, ok, message[, fields])   (fields: flat, e.g. a restart's result)",
  shutdown = "shutdown(code)",
  stat = "stat(name[, generation]) -> number | {count, sum} | nil",
  stat_add = "stat_add(name, n)   (the supervisor's own counters)",
  stat_observe = "stat_observe(name, seconds)",
  drain_window = "drain_window(generation, seconds)   (a gradual drain starts)",
  state_info = "state_info() -> nil | {version, size, generation} | false, err[, pending]",
  state_read = "state_read() -> blob | nil, err",
  state_stage = "state_stage(blob, version) -> true | nil, err",
  apply_config = "apply_config(cfg[, check_only]) -> true | nil, err   (what the next spawn uses; " ..
    "check_only: only whether it could)",
  output = "output(generation, n) -> text   (its last n stderr lines, joined with ' | ')",
  notify_manager = "notify_manager(text) -> true | false   (sd_notify to a service manager above)",
  figures = "figures([generation]) -> {connections, closing, processes, rss, cpu, listeners, overflows}",
  exec = "exec(req, carry) -> nil, err   (baton upgrade: the new image; returns only if it cannot start)",
  steer = "steer(generation[, weight]) -> weight, queued | nil, err   (steered listeners' share, 0-100)",
}

-- The supervisor's counters, each registered at 0 when it starts (or takes
-- over): Prometheus's increase() ignores a series' first sample, so a
-- counter that appeared only at its first event would hide that event
-- from every alert on it (examples/monitoring/alerts.yml).
_M.COUNTERS = { "baton.restarts", "baton.rollbacks", "baton.crashes", "baton.reloads",
  "baton.policy_errors", "baton.state_migrations", "baton.state_refused" }

-- Exited generations `baton status` still shows.
local HISTORY = 8
-- Seconds between two tries of a recovery that failed.
local RETRY_SECONDS = 1

-- Generations ----------------------------------------------------------------

-- Live generations, oldest first.
function Runtime:live()
  local out = {}
  for _, g in pairs(self.gens) do
    if not g.exited then out[#out + 1] = g end
  end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out
end

-- A read-only view of the stats region: t[name] is the service total or,
-- with GEN, that generation's figure.
function Runtime:stats_view(gen)
  local core = self.core
  return setmetatable({}, {
    __index = function(_, name) return core.stat(name, gen) end,
    __newindex = function() error("stats are read-only", 2) end,
    __metatable = "baton stats",
  })
end

-- The kernel's figures of generation ID (connections, processes, rss, cpu;
-- see baton.core.figures), read at most once per tick of the loop: a
-- policy that reads several fields crosses the boundary once.
function Runtime:figures(id)
  local c = self.figure_cache
  if c.at ~= self.clock then
    c.at, c.by = self.clock, {}
  end
  local f = c.by[id or 0]
  if not f then
    local err
    f, err = self.core.figures(id)
    if not f then
      self.core.log("warn", "cannot read the kernel's figures: " .. tostring(err))
      f = {}
    elseif f.error and not self.figures_warned then
      self.figures_warned = true
      self.core.log("warn", "the kernel's figures are partial: " .. f.error)
    end
    c.by[id or 0] = f
  end
  return f
end

-- The drain signal of drains no call named one for (a rollback's, a stop's,
-- a policy's gen:drain{} without `signal`): the policy's `signal` option
-- when it is one (every built-in takes it: nginx drains on QUIT), else TERM.
-- Whether the service file steers a listener (docs/steering.md): only
-- then are weights asked of the core.
function Runtime:steered()
  for _, l in ipairs(self.cfg.listen or {}) do
    if l.steer then return true end
  end
  return false
end

function Runtime:drain_signal()
  local sig = Gen.signal_name(rawget(self.options, "signal"))
  return sig or "TERM"
end

-- The hook NAME of the running policy, or the default policy's.
function Runtime:hook(name)
  return self.policy[name] or self.default[name]
end

-- Procedures -----------------------------------------------------------------

-- Runs policy hook NAME (ARG: a generation record or nil) under the
-- commit-point rule. Returns ok, message.
function Runtime:procedure(name, arg)
  local old = self.active
  -- Captured now: a reload during this procedure does not change its policy.
  local hook = self:hook(name)
  self.current = { spawned = {}, checkpointed = {} }
  self.last_promote_error = nil
  local ok, res, why = self:call_hook(name, hook, self.svc, arg and arg.handle)
  local spawned, checkpointed = self.current.spawned, self.current.checkpointed
  self.current = nil
  self.window_open = false

  local new = self.active
  self.last_spawned = spawned[#spawned] and spawned[#spawned].id or 0
  if new and new ~= old and new:alive() then
    local msg = ("generation %d took over%s"):format(new.id, old and (" from generation " .. old.id) or "")
    if not ok then msg = msg .. " (the policy failed after promoting it: " .. res:match("^[^\n]*") .. ")" end
    return true, msg
  end
  local reason
  if not ok then
    reason = "policy error: " .. res:match("^[^\n]*")
  elseif (res == nil or res == false) and why ~= nil then
    reason = type(why) == "string" and why or ("the policy's reason is %s, not a string"):format(text(why))
  elseif self.last_promote_error then
    reason = "the policy did not promote a new generation: promote refused: " .. self.last_promote_error
  else
    reason = "the policy did not promote a new generation"
  end
  -- Rollback: what this procedure started and did not promote drains (it
  -- may already hold connections); the serving generation is not touched.
  for _, g in ipairs(spawned) do
    if g ~= self.active and g:alive() then
      g.ended_as = "rolled back"
      -- On a steered listener, silently: no new connection, then the
      -- signal once it holds none (docs/steering.md).
      g:drain{ deadline = self.cfg.drain_timeout, quiet = g.share ~= nil and require("baton.steps").QUIET or nil }
    end
  end
  -- A generation that stored its final state and waits carries on.
  for _, g in ipairs(checkpointed) do
    if g == self.active and g:alive() and not g.draining then
      self.core.log("info", ("generation %d resumes (SIG%s)"):format(g.id, g.resume_signal))
      g:signal(g.resume_signal)
    end
  end
  return false, "rolled back: " .. reason
end

-- Tells the service manager above the supervisor (systemd), if any, how
-- the service is: STATUS= always, and KEYS (READY=1, ...) when given.
function Runtime:tell_manager(keys, status)
  local head = keys and (keys .. "\n") or ""
  self.core.notify_manager(head .. "STATUS=" .. status:gsub("\n", " "):sub(1, 200))
end

-- Runs FN() under the procedure lock; the lock is released whatever FN
-- does. Returns what FN returns, or false and the runtime error.
function Runtime:locked(fn)
  self:lock()
  local ok, a, b = xpcall(fn, traceback)
  self:unlock()
  if not ok then
    self.core.log("error", "runtime: " .. text(a))
    return false, "rolled back: runtime error: " .. text(a):match("^[^\n]*")
  end
  return a, b
end

-- A restart's result, as `baton restart --json` prints it (a contract):
-- outcome "took over", "rolled back" or "refused"; new and old generation
-- ids (absent when there was none); the reason it did not take over (empty
-- when it did); its duration in seconds.
function Runtime:restart(req, why)
  -- Asked for and not yet begun: what svc:pending() counts as queued.
  self.restarts_queued = self.restarts_queued + 1
  self:task("restart", function()
    local t0, old = self:now(), self.active and self.active.id
    local ok, msg = self:locked(function()
      self.restarts_queued = self.restarts_queued - 1
      if self.stopping or self.start_failed then return nil, "the supervisor is stopping" end
      self.last_spawned = 0 -- a runtime error before the procedure must not name the last one
      self.failed = nil -- `baton restart` of a failed service tries again
      self.core.log("info", "restart requested" .. (why and (" (" .. why .. ")") or ""))
      t0 = self:now()
      old = self.active and self.active.id
      local ok, msg = self:procedure("restart", self.active)
      if ok then
        self:count("baton.restarts")
        self:observe("baton.restart_seconds", self:now() - t0)
      else
        self:count("baton.rollbacks")
      end
      -- The trigger's reason (svc:restart("memory over 60 MiB"), a watched
      -- file, SIGHUP) goes with the event, as `cause` and in its reason.
      self.events:add{ time = t0, kind = "restart", ok = ok, duration = self:now() - t0,
        reason = why and ("%s (asked for: %s)"):format(msg, why) or msg, cause = why,
        generation = ok and self.active.id or self.last_spawned }
      -- A rollback asked for during this restart is listed after it: the
      -- restart's row, then what the rollback did to it.
      if self.rollback_req then
        local rreq, asked_at = self.rollback_req, self.rollback_asked_at
        self.rollback_req = nil
        local rmsg = ok and "the restart took over before the rollback" or
          ("rolled back; generation %d serves"):format(self.active and self.active.id or 0)
        self.events:add{ time = asked_at, kind = "rollback", ok = not ok, reason = rmsg,
          generation = self.last_spawned }
        if rreq ~= true then self.core.reply(rreq, not ok, rmsg) end
      end
      self.core.log(ok and "info" or "error", "restart: " .. msg)
      self:tell_manager(nil, ok and msg or ("restart " .. msg))
      return ok, msg
    end)
    local new
    if ok then
      new = self.active.id
    elseif ok == false and self.last_spawned ~= 0 then
      new = self.last_spawned
    end
    self.core.reply(req, ok == true, msg, {
      outcome = ok and "took over" or (ok == nil and "refused" or "rolled back"),
      new = new, old = old, duration = math.floor((self:now() - t0) * 1000 + 0.5) / 1000,
      reason = ok and "" or msg:gsub("^rolled back: ", ""),
    })
  end)
end

function Runtime:start()
  self:task("start", function()
    local t0 = self:now()
    local ok, msg = self:locked(function()
      local ok, msg = self:procedure("start")
      -- Decided before the lock passes on: a restart queued behind a start
      -- that failed must not spawn while the supervisor stops.
      if not ok then self.start_failed = true end
      return ok, msg
    end)
    -- Nothing served before: a failed start rolled nothing back.
    if not ok then msg = msg:gsub("^rolled back: ", "") end
    self.events:add{ time = t0, kind = "start", ok = ok, reason = msg, duration = self:now() - t0,
      generation = ok and self.active and self.active.id or self.last_spawned }
    if ok then
      self.core.log("info", "service '" .. self.cfg.name .. "' is up: " .. msg)
      self:tell_manager("READY=1", msg)
    elseif not self.stopping then
      self.core.log("error", "service '" .. self.cfg.name .. "' failed to start: " .. msg)
      self:stop(nil, 1)
    end
  end)
end

-- The policy gave up recovering (svc:give_up): nothing serves, and no
-- recovery is tried until `baton restart` starts a generation again.
function Runtime:give_up(why)
  if self.failed then return end
  self.failed = why
  self.events:add{ time = self:now(), kind = "failed", ok = false, reason = why .. " (baton restart starts again)" }
  self.core.log("error", "giving up: " .. why .. "; the service is failed until `baton restart`")
  self:tell_manager(nil, "failed: " .. why)
end

-- The serving generation G exited on its own.
function Runtime:died(g)
  self:task("recovery", function()
    local retry = false
    self:locked(function()
      if self.stopping or self.failed or (self.active and self.active:alive()) then return end
      local t0 = self:now()
      local ok, msg = self:procedure("died", g)
      self.events:add{ time = t0, kind = "recovery", ok = ok, reason = msg, duration = self:now() - t0,
        generation = ok and self.active.id or self.last_spawned }
      self.core.log(ok and "info" or "error", "recovery after generation " .. g.id .. ": " .. msg)
      -- Keep trying, with the policy's backoff: a service without a
      -- serving generation is the one state we must not stay in.
      retry = not ok and not self.stopping and not self.failed
    end)
    -- At least a second between tries, whatever the policy's own backoff:
    -- a died hook that fails at once must not spin the loop.
    if retry then self:after(RETRY_SECONDS, function() self:died(g) end) end
  end)
end

-- `baton rollback`: honoured by a restart that is in its window (see
-- svc:rollback_requested); answered once that restart has rolled back.
function Runtime:rollback(req)
  if not self.window_open then
    local why = "nothing to roll back: no restart is in a window where the " ..
      "previous generation still serves (a policy such as bluegreen opens one)"
    self.events:add{ time = self:now(), kind = "rollback", ok = false, reason = why }
    self.core.reply(req, false, why)
    return
  end
  if self.rollback_req then
    self.core.reply(req, false, "a rollback is already under way")
    return
  end
  -- Its event is added once the restart it ends is over (Runtime:restart).
  self.rollback_req, self.rollback_asked_at = req or true, self:now()
  self:wake("rollback")
end

-- Drains every generation, then shuts the supervisor down with CODE.
function Runtime:stop(req, code)
  if self.stopping then
    self.core.reply(req, true, "already stopping")
    return
  end
  self.stopping = true
  self:teardown_triggers()
  self.events:add{ time = self:now(), kind = "stop", ok = true, reason = "draining every generation" }
  self:tell_manager("STOPPING=1", "stopping: draining every generation")
  self.core.log("info", "stopping: draining every generation")
  self:task("stop", function()
    self:call_hook("stop", self:hook("stop"), self.svc)
    -- Whatever the hook did, nothing outlives the stop: drain what is left,
    -- including generations a restart in flight may still start.
    while true do
      local live = self:live()
      if #live == 0 then break end
      for _, g in ipairs(live) do g:drain() end
      self:wait("any-exit", 1)
    end
    self.core.reply(req, true, "stopped")
    self.core.shutdown(code or 0)
  end)
end

-- The supervisor's own image: upgrade, and taking over --------------------------

-- `baton upgrade`: the C core has checked the new binary (it started, read
-- a carried state like ours and accepted the service file: OK), or says
-- why not. Once no procedure runs, the supervisor becomes the new image:
-- core.exec returns only if it cannot. A restart asked for meanwhile waits
-- its turn and runs under the new image. The C core answers the client
-- (with the image's facts); the runtime decides when, and keeps the record.
function Runtime:upgrade(req, ok, why)
  if not ok then
    self.events:add{ time = self:now(), kind = "upgrade", ok = false, reason = why }
    self.core.log("error", "upgrade refused (this image serves on): " .. tostring(why))
    return
  end
  self:task("upgrade", function()
    self:locked(function()
      if self.stopping then
        self.core.reply(req, false, "the supervisor is stopping")
        return
      end
      self.core.log("info", "upgrade: the new image takes over (same pid)")
      local _, err = self.core.exec(req, self:carry())
      self.events:add{ time = self:now(), kind = "upgrade", ok = false, reason = err }
      self.core.log("error", "upgrade failed (this image serves on): " .. tostring(err))
    end)
  end)
end

-- What the runtime must remember when another supervisor takes over from
-- this one (a new image after `baton upgrade`, or a new `baton run` after
-- this one died): plain data, as JSON carries it. Policies' own variables
-- are not in it: they start afresh, as after a reload. WITHOUT_EVENTS: the
-- copy on disk, whose events go to a file of their own as they come
-- (query "events_since"), so that an event costs its own line, not the
-- whole history again.
function Runtime:carry(without_events)
  local gens = {}
  for _, g in ipairs(self:live()) do
    gens[#gens + 1] = { id = g.id, pid = g.pid, state = g.state, started = g.started,
      ready = g.ready or false, ready_at = g.ready_at, promoted_at = g.promoted_at,
      draining = g.draining or false, drain_started = g.drain_started, drain = g.drain_plan,
      ended_as = g.ended_as, ports = g.ports, stopping = g.stopping or false,
      adopted_at = g.adopted_at }
  end
  local c = { version = 1, active = self.active and self.active.id or 0, generations = gens,
    exited = self.exited, exited_not_shown = self.exited_not_shown, policy_errors = self.policy_errors }
  if not without_events then c.events, c.events_not_kept = self.events:last() end
  return c
end

-- Takes over from the supervisor before: C (carry) and HOW it ended
-- ("upgrade", "upgrade failed: why" back on the old image, or "adoption").
-- Generations
-- the C core found gone are reported as exits right after. A live one
-- that is neither serving nor draining was in a restart cut short: it
-- drains, as a rollback would.
function Runtime:take_over(c, how)
  local function num(v) return type(v) == "number" and v or nil end
  for _, e in ipairs(type(c.events) == "table" and c.events or {}) do
    if type(e) == "table" then self.events:add(e) end
  end
  self.events.dropped = self.events.dropped + (num(c.events_not_kept) or 0)
  for _, e in ipairs(type(c.exited) == "table" and c.exited or {}) do self.exited[#self.exited + 1] = e end
  self.exited_not_shown = num(c.exited_not_shown) or 0
  self.policy_errors = num(c.policy_errors) or 0
  local adopting = how == "adoption"
  for _, s in ipairs(type(c.generations) == "table" and c.generations or {}) do
    local id = num(s.id)
    if id and not self.gens[id] then
      local g = Gen.new(self, id, num(s.pid) or 0, self:stats_view(id), type(s.ports) == "table" and s.ports or {})
      g.state, g.started = tostring(s.state or "ready"), num(s.started) or self:now()
      g.ready, g.ready_at, g.promoted_at = s.ready == true, num(s.ready_at), num(s.promoted_at)
      g.ended_as, g.stopping = s.ended_as, s.stopping == true
      g.adopted_at = num(s.adopted_at) or (adopting and self:now() or nil)
      -- Its weight on steered listeners, as the carried members came back.
      g.share = self.core.steer(id)
      self.gens[id] = g
      if s.draining == true then
        g:resume_drain(type(s.drain) == "table" and s.drain or {}, num(s.drain_started) or self:now())
      end
    end
  end
  local active = self.gens[num(c.active) or 0]
  if active and active.promoted_at and not active.draining then self.active = active end
  for _, g in ipairs(self:live()) do
    -- One the policy left serving a share of a steered listener beside
    -- the active one (a split, weights set after its promotion) serves on.
    local splits = g.promoted_at and (g.share or 0) > 0
    if g ~= self.active and not g.draining and not splits then
      g.ended_as = "rolled back: its restart was cut short when the supervisor " ..
        (adopting and "died" or "was upgraded")
      g:drain{ deadline = self.cfg.drain_timeout }
    end
  end
  local msg
  if adopting then
    local n = #self:live()
    msg = ("took over the service: %d generation(s) adopted%s"):format(n,
      self.active and (", generation " .. self.active.id .. " serves") or "")
  elseif how == "upgrade" then
    msg = "upgraded: this image took over"
  else
    msg = how
  end
  local ok = how == "upgrade" or adopting
  self.events:add{ time = self:now(), kind = adopting and "adoption" or "upgrade", ok = ok, reason = msg,
    generation = self.active and self.active.id }
  self.core.log(ok and "info" or "error", msg)
  self:init()
  -- Nothing serves (it died while no supervisor watched): start afresh.
  if not self.active then self:start() end
end

-- Triggers: set up by the policy's init hook, torn down on reload ------------

-- Runs a trigger's callback as a budgeted hook.
function Runtime:trigger(name, fn, ...)
  if self.stopping then return end
  local args = self.pack(...)
  self:task(name, function() self:call_hook(name, fn, self.svc, unpack(args, 1, args.n)) end)
end

-- Undoes the triggers. With PARK (a reload re-running init), file watches
-- are kept aside instead, until the new init has run.
function Runtime:teardown_triggers(park)
  for _, undo in ipairs(self.triggers) do undo(park) end
  self.triggers = {}
  if not park then self:release_parked() end
end

-- Parked watches: a change that comes between the teardown and the new
-- init is kept, and the new init's watch of the same path gets it. So a
-- ConfigMap update that changes the service file and a watched file at
-- once reloads and restarts, whichever of the two is seen first.
function Runtime:park_watch(path, wid)
  local dup = self.parked[path]
  if dup then -- the policy watched this path twice: one carries on
    self.watch_fns[dup.id] = nil
    self.core.unwatch(dup.id)
  end
  local p = { id = wid, changed = dup and dup.changed or false }
  self.parked[path] = p
  self.watch_fns[wid] = function() p.changed = true end
end

-- The parked watch of PATH, if any: its id and whether it saw a change.
function Runtime:take_parked(path)
  local p = self.parked[path]
  if not p then return nil end
  self.parked[path] = nil
  return p.id, p.changed
end

function Runtime:release_parked()
  for _, p in pairs(self.parked) do
    self.watch_fns[p.id] = nil
    self.core.unwatch(p.id)
  end
  self.parked = {}
end

-- The policy's init hook: where it sets up its triggers.
function Runtime:init()
  self:teardown_triggers(true)
  local hook = self:hook("init")
  self:task("init", function()
    self:call_hook("init", hook, self.svc)
    self:release_parked() -- what the new init no longer watches
  end)
end

-- Configuration and reload ----------------------------------------------------

local function deep_copy(v)
  if type(v) ~= "table" then return v end
  local c = {}
  for k, x in pairs(v) do c[k] = deep_copy(x) end
  return c
end

-- Takes a loaded (and applied) service file and its policy.
function Runtime:configure(cfg)
  self.cfg, self.policy = cfg, cfg.policy
  self.options = cfg.policy_options or {}
  local view = {}
  for k, v in pairs(cfg) do
    if k ~= "policy" and k ~= "policy_options" then view[k] = deep_copy(v) end
  end
  self.config_view = view -- the policy's own copy: what it changes there stays there
  for k, v in pairs(sandbox.LIMITS) do self.limits[k] = (cfg.policy_limits or {})[k] or v end
  self:watch_config()
end

-- The service file and the policy file it names are watched: a change
-- reloads, as `baton reload` does.
function Runtime:watch_config()
  local want = {}
  if self.cfg.file then want[self.cfg.file] = true end
  if self.cfg.policy_file then want[self.cfg.policy_file] = true end
  for path, id in pairs(self.config_watches) do
    if not want[path] then
      self.core.unwatch(id)
      self.config_watches[path], self.watch_fns[id] = nil, nil
    end
  end
  for path in pairs(want) do
    if not self.config_watches[path] then
      local id, err = self.core.watch(path)
      if id then
        self.config_watches[path] = id
        self.watch_fns[id] = function()
          if not self.stopping then self:reload(nil, path:match("[^/]*$") .. " changed") end
        end
      else
        self.core.log("warn", ("cannot watch %s: %s (baton reload still works)"):format(path, err))
      end
    end
  end
end

-- Re-reads the service file and its policy. The running ones stay unless
-- the new ones load, validate, and keep what cannot change (the C core
-- says what that is). A procedure under way keeps the hook it started with.
-- DRY: `baton reload --dry-run`: the same checks, nothing applied, nothing
-- recorded.
function Runtime:reload(req, why, dry)
  if dry then
    local cfg, err = self.loader(self.cfg.file, { runtime_dir = self.cfg.runtime_dir })
    local ok = cfg ~= nil
    if cfg then ok, err = self.core.apply_config(cfg, true) end
    local msg = ok and ("%s (policy %s) would be taken; nothing applied"):format(cfg.file or "the configuration",
      cfg.policy_name) or err
    self.core.log("info", "baton reload --dry-run: " .. (ok and msg or ("would be refused: " .. err)))
    self.core.reply(req, ok and true or false, msg)
    return
  end
  self:tell_manager(("RELOADING=1\nMONOTONIC_USEC=%d"):format(math.floor(self:now() * 1e6)), "reloading")
  local cfg, err = self.loader(self.cfg.file, { runtime_dir = self.cfg.runtime_dir })
  local ok
  if cfg then ok, err = self.core.apply_config(cfg) end
  local prefix = why and (why .. ": ") or "baton reload: "
  if not ok then
    self.events:add{ time = self:now(), kind = "reload", ok = false, reason = err }
    self.core.log("error", prefix .. "reload refused (still running the previous one): " .. err)
    self:tell_manager("READY=1", "reload refused; running the previous configuration")
    self.core.reply(req, false, err)
    return
  end
  self:configure(cfg)
  self:count("baton.reloads")
  local msg = ("reloaded %s (policy %s)"):format(cfg.file or "the configuration", cfg.policy_name)
  self.events:add{ time = self:now(), kind = "reload", ok = true, reason = msg }
  self:tell_manager("READY=1", msg)
  self.core.log("info", prefix .. msg)
  self.core.reply(req, true, msg)
  if not self.stopping then self:init() end
end

-- Events from the C core: one handler each ---------------------------------

local on = {}

-- CARRY: what the supervisor before this one left (see Runtime:take_over).
function on.start(rt, carry, how)
  for _, name in ipairs(_M.COUNTERS) do rt.core.stat_add(name, 0) end
  if type(carry) == "table" then return rt:take_over(carry, how) end
  rt:init()
  rt:start()
end

function on.upgrade(rt, req, ok, why) rt:upgrade(req, ok == 1, why) end

function on.timer(rt, tid)
  local fn = rt.timers[tid]
  rt.timers[tid] = nil
  if fn then fn() end
end

function on.ready(rt, id)
  local g = rt.gens[id]
  if g then g:mark_ready("READY=1") end
end

function on.stored(rt, id, name)
  if name == rt:state_name() then rt:wake("state-checked") end
  local g = rt.gens[id]
  if g then
    g.stored[name] = (g.stored[name] or 0) + 1
    rt:wake(g.key)
  end
end

function on.stopping(rt, id)
  local g = rt.gens[id]
  if g then g.stopping = true end
end

function on.exit(rt, id, code, sig)
  local g = rt.gens[id]
  if not g or g.exited then return end
  local expected = g.draining
  g.exited, g.exit_code, g.exit_signal, g.exited_at = true, code, sig, rt:now()
  if g.share then g.share = 0 end -- its members leave the groups (steer.h)
  g.state = "exited"
  if not g.ended_as then
    g.ended_as = (g.draining and "drained") or (rt.active == g and "crashed")
      or (not g.promoted_at and "rolled back: exited before it served") or "exited on its own"
  end
  if g.ended_as == "crashed" and not rt.stopping then
    rt.events:add{ time = g.exited_at, kind = "crash", ok = false, generation = g.id, reason = g:exit_reason() }
  end
  -- The core says nothing more about it: the runtime keeps a line of
  -- history and lets the record go (1,000 restarts must not grow).
  rt.gens[id] = nil
  table.insert(rt.exited, 1, rt:summary(g))
  if rt.exited[HISTORY + 1] then
    rt.exited[HISTORY + 1] = nil
    rt.exited_not_shown = rt.exited_not_shown + 1
  end
  rt.core.log(expected and "info" or "warn", ("generation %d (pid %d) exited: %s"):format(g.id, g.pid, g:exit_reason()))
  rt:wake(g.key)
  rt:wake("any-exit")
  if rt.active == g then
    -- The serving generation is gone. Drained on purpose (a policy that
    -- stops the old one before the new one serves) or crashed: either
    -- way nothing serves, and recovery starts.
    rt.active = nil
    if not rt.stopping then
      if not g.draining then rt:count("baton.crashes") end
      rt:died(g)
    end
  end
end

function on.probe(rt, id, ok, detail) rt:wake("probe:" .. id, ok, detail) end

function on.watch(rt, id)
  local fn = rt.watch_fns[id]
  if fn then fn() end
end

-- Requests from the control socket and signals (REQ nil: nobody waits).
function on.restart(rt, req, why) rt:restart(req, why) end
function on.rollback(rt, req) rt:rollback(req) end
function on.stop(rt, req) rt:stop(req) end
function on.reload(rt, req) rt:reload(req) end
function on.reload_check(rt, req) rt:reload(req, nil, true) end

-- NOW is the loop's clock (monotonic seconds) when the event happened.
function Runtime:dispatch(now, event, ...)
  self.clock = now
  local handler = on[event]
  if not handler then
    self.core.log("warn", "runtime: unknown event " .. text(event))
    return false
  end
  handler(self, ...)
  return self:carry_changed()
end

-- Whether what Runtime:carry() returns changed since the last call: a
-- stamp of what changes in it as generations live (each live one's state,
-- readiness, drain, end), the active one, and the lengths of the lists it
-- holds, compared with the last. The C core rewrites the successor's copy
-- only then, so a drain's polls cost no carry.
function Runtime:carry_changed()
  local t = { self.active and self.active.id or 0, #self.exited, self.exited_not_shown,
    self.events.count + self.events.dropped, self.policy_errors }
  for _, g in ipairs(self:live()) do
    t[#t + 1] = table.concat({ g.id, g.pid, g.state, tostring(g.ready), tostring(g.promoted_at),
      tostring(g.draining), tostring(g.drain_started), tostring(g.stopping), tostring(g.ended_as),
      tostring(g.adopted_at), tostring(g.ready_at), tostring(g.share) }, ":")
  end
  local stamp = table.concat(t, "|")
  local changed = stamp ~= self.carried_stamp
  self.carried_stamp = stamp
  return changed
end

-- What `baton status` and /ready read ---------------------------------------

function Runtime.summary(_, g)
  return { id = g.id, pid = g.pid, state = g.state, started = g.started, ready_at = g.ready_at,
    exited_at = g.exited_at, exit_code = g.exit_code, exit_signal = g.exit_signal,
    ended = g.exited and (g.ended_as .. ", " .. g:exit_reason()) or nil, weight = g.share,
    ports = not g.exited and next(g.ports or {}) ~= nil and g.ports or nil }
end

-- What `baton status` and /ready read (WHAT "view"):
--   { serving, active (its id; 0: none), generations = { summary, ... } (oldest first),
--     exited_not_shown, last_restart = event | nil }
-- and `baton events` (WHAT "events"): { events = { event, ... }, not_kept };
-- the carried state (WHAT "carry", "carry_file": Runtime:carry) and the
-- events after sequence number N (WHAT "events_since"): { events, first
-- (the first one's number), total (the newest one's) }; "carry_file"
-- holds those too, as events_since, so the file costs one query a turn.
-- Times are the loop's monotonic seconds; N: how many events.
function Runtime:query(what, now, n)
  self.clock = now
  if what == "carry" then return self:carry() end
  if what == "events_since" or what == "carry_file" then
    local list, first = self.events:since(n or 0)
    local since = { events = list, first = first, total = self.events:total() }
    if what == "events_since" then return since end
    -- The file's copy and the events it lacks, in one crossing.
    local doc = self:carry(true)
    doc.events_since = since
    return doc
  end
  if what == "events" then
    local list, not_kept = self.events:last(n)
    return { events = list, not_kept = not_kept }
  end
  local gens = {}
  for i = #self.exited, 1, -1 do gens[#gens + 1] = self.exited[i] end
  for _, g in ipairs(self:live()) do gens[#gens + 1] = self:summary(g) end
  table.sort(gens, function(a, b) return a.id < b.id end)
  return { serving = self.active ~= nil and self.active:alive() and not self.stopping,
    active = self.active and self.active.id or 0, failed = self.failed,
    generations = gens, exited_not_shown = self.exited_not_shown,
    last_restart = self.events:latest("restart") }
end

-- A core offers exactly the functions in _M.CORE.
local function check_core(core)
  for name in pairs(_M.CORE) do
    if type(core[name]) ~= "function" then error("the core has no function '" .. name .. "'", 3) end
  end
  for name in pairs(core) do
    if not _M.CORE[name] then
      error("the core offers '" .. tostring(name) .. "', which is not in baton.runtime's CORE", 3)
    end
  end
end

function _M.new(core, cfg, default_policy)
  check_core(core)
  local rt = setmetatable({
    core = core, default = default_policy, limits = {}, clock = 0,
    hooks = {}, finish = {}, dead = setmetatable({}, { __mode = "k" }), policy_depth = 0,
    triggers = {}, watch_fns = {}, config_watches = {}, parked = {}, figure_cache = {},
    gens = {}, exited = {}, exited_not_shown = 0, events = History.new(),
    waiters = {}, timers = {}, queue = {}, busy = false,
    stopping = false, policy_errors = 0, crashes = 0, restarts_queued = 0,
  }, Runtime)
  -- What a reload loads: the service file (the test kit loads its own).
  rt.loader = config.load
  rt.service_stats = rt:stats_view()
  rt.svc = Svc.handle(rt)
  rt:configure(cfg)
  return rt
end

_M.Runtime = Runtime
return _M
