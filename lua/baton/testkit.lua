-- baton.testkit: test a policy with busted in milliseconds. A simulated
-- supervisor: a clock that moves only when you say, generations that are
-- ready, crash or exit when you say, stats figures and probe answers you
-- set. The policy runs in the real runtime, exactly as under baton.
--
--   local testkit = require("baton.testkit")
--   local sim = testkit.new{ policy = "graceful", options = { deadline = 60 } }
--   sim:start(); sim:ready(1)            -- generation 1 up
--   local reply = sim:restart()          -- like `baton restart`
--   sim:ready(2)                         -- the new one says READY=1
--   sim:set_stat("http.connections", 0, 1)  -- generation 1 went idle
--   sim:advance(0.5)                     -- half a second passes
--   assert.is_true(reply.ok)
--   assert.equal(2, sim:active())
--
-- What the policy did is in sim.spawned (ids), sim.signals ({id, sig,
-- group}), sim.replies, sim.logs; sim:logged(pattern) searches the logs.
-- Hooks run under the supervisor's budget (instructions and time, from
-- config.policy_limits; not the memory cap): one that loops is stopped and
-- its procedure rolls back, as under baton.
--
-- State handover: sim:store(id, blob, version) is generation ID saving its
-- state (sim:store_bad(id, why) a blob the core found bad); each spawn's
-- state is in sim.spawn_state[id]: { mode = "stored" | "staged" | "none",
-- blob, version }.

local runtime = require("baton.runtime")
local config = require("baton.config")

local _M = {}

local Sim = {}
Sim.__index = Sim

-- The configuration OPTS describe (see _M.new), as config.load would give
-- it; or nil and why, as config.load would say it.
local function sim_config(opts)
  local spec = opts.policy or "default"
  if type(spec) == "string" and opts.options then
    spec = { spec }
    for k, v in pairs(opts.options) do spec[k] = v end
  end
  local policy, err, name, options = config.load_policy(spec, opts.dir)
  if not policy then return nil, err end
  local cfg = { name = "sim", ready_timeout = 5, drain_timeout = 10, dir = "." }
  for k, v in pairs(opts.config or {}) do cfg[k] = v end
  cfg.policy, cfg.policy_name, cfg.policy_options = policy, name, options
  return cfg
end

-- OPTS: policy (a built-in's name, a table of hooks, or { name, options }),
-- options (for a built-in), config (service file fields: ready_timeout,
-- drain_timeout, policy_limits ...).
function _M.new(opts)
  opts = opts or {}
  local sim = setmetatable({ t = 0, next_id = 0, next_timer = 0, next_probe = 0, timers = {},
    spawned = {}, signals = {}, replies = {}, logs = {}, stats = {}, next_req = 0,
    spawn_error = nil, probes = {}, spawn_state = {} }, Sim)
  -- The fake core: exactly the functions of runtime.CORE (runtime.new
  -- refuses one more or less), each doing what the real one does to the
  -- world a spec sees.
  local core = {}
  sim.core = core
  function core.spawn(mode)
    if sim.spawn_error then return nil, sim.spawn_error end
    sim.next_id = sim.next_id + 1
    sim.spawned[#sim.spawned + 1] = sim.next_id
    mode = mode or "stored"
    local st = { mode = mode }
    if mode == "stored" and sim.state and not sim.state.bad then
      st.blob, st.version = sim.state.blob, sim.state.version
    elseif mode == "staged" then
      st.blob, st.version = sim.staged.blob, sim.staged.version
      sim.staged = nil
    end
    sim.spawn_state[sim.next_id] = st
    -- Its per_generation listeners' ports: sim.ports(id) -> { NAME = port }.
    return sim.next_id, 1000 + sim.next_id, sim.ports and sim.ports(sim.next_id) or {}
  end
  function core.signal(id, sig, group)
    sim.signals[#sim.signals + 1] = { id = id, sig = sig, group = group }
    return true
  end
  function core.timer(s)
    sim.next_timer = sim.next_timer + 1
    sim.timers[sim.next_timer] = sim.t + s
    return sim.next_timer
  end
  function core.cancel(tid) sim.timers[tid] = nil end
  function core.log(level, msg) sim.logs[#sim.logs + 1] = level .. ": " .. msg end
  function core.reply(req, ok, msg, fields)
    sim.replies[#sim.replies + 1] = { req = req, ok = ok, msg = msg, fields = fields }
    if type(req) == "table" then req.ok, req.msg, req.fields, req.done = ok, msg, fields, true end
  end
  function core.shutdown(code) sim.shutdown_code = code end
  -- baton upgrade: the carried state is kept (sim.carried) and, as when the
  -- new image cannot start, exec returns (sim.exec_error, or a default);
  -- the real core answers REQ itself.
  function core.exec(req, carry)
    sim.carried = carry
    if type(req) == "table" then req.ok, req.done = false, true end
    return nil, sim.exec_error or "the new image did not start"
  end
  sim.own_stats = {}
  function core.stat_add(name, n) sim.own_stats[name] = (sim.own_stats[name] or 0) + n end
  function core.stat_observe(name, seconds)
    local h = sim.own_stats[name] or { count = 0, sum = 0 }
    h.count, h.sum = h.count + 1, h.sum + seconds
    sim.own_stats[name] = h
  end
  -- What the next generation starts with; the real core also refuses a
  -- change of what cannot change while the service runs.
  -- What generation ID wrote to stderr (sim.stderr[id], a list of lines).
  sim.stderr = {}
  function core.output(id, n)
    local lines = sim.stderr[id] or {}
    return table.concat(lines, " | ", math.max(1, #lines - (n or 5) + 1), #lines)
  end
  -- What the supervisor tells a service manager above it (sd_notify).
  sim.manager = {}
  function core.notify_manager(text)
    sim.manager[#sim.manager + 1] = text
    return true
  end
  -- What the kernel says of each generation: sim.figures[id] = { connections
  -- = n, rss = bytes, ... }; listeners in sim.listener_figures.
  sim.figures, sim.listener_figures = {}, {}
  sim.reads = 0
  function core.figures(id)
    sim.reads = sim.reads + 1
    local f = { read = sim.reads }
    for k, v in pairs(id and sim.figures[id] or {}) do f[k] = v end
    if id then
      for _, k in ipairs({ "connections", "closing", "processes", "rss", "cpu", "listening" }) do
        f[k] = f[k] or 0
      end
      if f.stopped == nil then f.stopped = false end
    end
    f.listeners, f.overflows = sim.listener_figures, 0
    return f
  end
  -- Steered listeners (sim.steered = true): each generation's weight, as
  -- the real core gives it: 100 to the first, 0 to one spawned while
  -- another has a share; sim.queued[id] its members' accept queues.
  sim.weights, sim.queued = {}, {}
  function core.steer(id, weight)
    if not sim.steered then return nil, "the generation holds no steered listener" end
    if weight == nil and sim.weights[id] == nil then
      local served = false
      for _, w in pairs(sim.weights) do served = served or w > 0 end
      sim.weights[id] = served and 0 or 100
    end
    if weight ~= nil then
      if sim.weights[id] == nil then return nil, "the generation holds no steered listener" end
      sim.weights[id] = math.floor(weight + 0.5)
    end
    return sim.weights[id], sim.queued[id] or 0
  end
  function core.apply_config(cfg, check_only)
    if not check_only then sim.applied = cfg end
    return true
  end
  function core.stat(name, gen)
    local v = sim.stats[name]
    if v == nil then return nil end
    if gen then return v[gen] end
    local total = 0
    for _, x in pairs(v) do total = total + x end
    return total
  end
  -- Probes answer at once, as sim.probe(host, port, path) says (default: ok).
  -- As the real core, a tcp probe of a listener the supervisor holds is
  -- refused (it would pass whatever the app does): config.listen's.
  function core.probe(host, port, path)
    local hp = host:find(":") and ("[" .. host .. "]:" .. port) or (host .. ":" .. port)
    local own = not path and config.own_listener(sim.rt and sim.rt.cfg.listen, hp)
    if own then
      return nil, ("it is the service's own listener '%s': the supervisor holds that socket"):format(own)
    end
    sim.next_probe = sim.next_probe + 1
    local id = sim.next_probe
    local ok, detail = true, path and "status 200" or "connected"
    if sim.probe then ok, detail = sim.probe(host, port, path) end
    sim.probes[#sim.probes + 1] = { host = host, port = port, path = path }
    sim.pending_probes = sim.pending_probes or {}
    sim.pending_probes[#sim.pending_probes + 1] = { id = id, ok = ok and 1 or 0, detail = detail }
    return id
  end

  function core.state_info()
    local st = sim.state
    if not st then return nil end
    if st.bad then return false, st.bad end
    return { version = st.version, size = #st.blob, generation = st.generation }
  end
  function core.state_read() return sim.state.blob end
  function core.state_stage(blob, version)
    sim.staged = { blob = blob, version = version }
    return true
  end

  sim.drain_windows = {}
  function core.drain_window(id, seconds) sim.drain_windows[id] = { at = sim.t, seconds = seconds } end
  sim.watches = {}
  function core.watch(path)
    sim.next_timer = sim.next_timer + 1
    sim.watches[sim.next_timer] = path
    return sim.next_timer
  end
  function core.unwatch(id) sim.watches[id] = nil end

  sim.opts = opts
  local cfg, err = sim_config(opts)
  if not cfg then error(err, 2) end
  sim.rt = runtime.new(core, cfg, assert(config.load_policy("default")))
  -- A reload loads what sim:reload(opts) says, not a file (Runtime:reload).
  sim.rt.loader = function() return sim_config(sim.reload_opts or sim.opts) end
  -- Steering is simulated by sim.steered, not by a listener of the config.
  sim.rt.steered = function() return sim.steered == true end
  return sim
end

-- Delivers probe answers, then runs every timer due within DT seconds.
function Sim:advance(dt)
  local stop = self.t + (dt or 0)
  repeat
    while self.pending_probes and #self.pending_probes > 0 do
      local p = table.remove(self.pending_probes, 1)
      self.rt:dispatch(self.t, "probe", p.id, p.ok, p.detail)
    end
    local best, at
    for tid, when in pairs(self.timers) do
      if when <= stop and (not at or when < at or (when == at and tid < best)) then best, at = tid, when end
    end
    if best then
      self.timers[best] = nil
      self.t = math.max(self.t, at)
      self.rt:dispatch(self.t, "timer", best)
    end
  until not best and not (self.pending_probes and #self.pending_probes > 0)
  self.t = stop
end

-- Delivers EVENT (with its arguments) as the C core would, now.
function Sim:event(event, ...) self.rt:dispatch(self.t, event, ...) end

function Sim:start() self:event("start"); self:advance(0) end

-- The usual opening of a spec: a simulated supervisor with OPTS whose first
-- generation has started and said READY=1. A start that failed is an error
-- that says why (the start's reason and the errors logged), not a
-- simulated supervisor that quietly serves nothing.
function _M.started(opts)
  local sim = _M.new(opts)
  sim:start()
  sim:ready(1)
  local ev = sim.rt.events:latest("start")
  if ev and not ev.ok then
    local errors = {}
    for _, l in ipairs(sim.logs) do
      if l:find("^error: ") then errors[#errors + 1] = l:gsub("^error: ", "") end
    end
    error(("testkit.started: the start failed: %s%s"):format(ev.reason,
      #errors > 0 and ("\nerrors logged:\n  " .. table.concat(errors, "\n  ")) or ""), 2)
  end
  return sim
end

-- The file at PATH (as the policy named it, made absolute by the service
-- file's folder) changed.
function Sim:touch(path)
  for id, p in pairs(self.watches) do
    if p == path or p:sub(-#path - 1) == "/" .. path then self:event("watch", id) end
  end
  self:advance(0)
end
function Sim:ready(id) self:event("ready", id); self:advance(0) end
function Sim:store(id, blob, version)
  self.state = { blob = blob, version = version or 1, generation = id }
  self:event("stored", id, self.rt:state_name())
  self:advance(0)
end
function Sim:store_bad(id, why)
  self.state = { bad = why, generation = id }
  self:event("stored", id, self.rt:state_name())
  self:advance(0)
end
function Sim:exit(id, code, sig)
  if self.weights and self.weights[id] then self.weights[id] = 0 end -- its members leave
  self:event("exit", id, code or 0, sig or 0); self:advance(0)
end

-- What the CLI would ask: returns a table that gets ok, msg, done when the
-- runtime answers.
local function request(sim, event)
  local req = {}
  sim:event(event, req)
  sim:advance(0)
  return req
end

function Sim:restart() return request(self, "restart") end   -- baton restart
-- baton reload: loads the policy again (a policy file is read again) with
-- OPTS (policy, options, config as in testkit.new) laid over the sim's
-- own; a policy that does not load or validate is refused (reply.ok
-- false, reply.msg why) and the running one stays, as in the supervisor.
function Sim:reload(opts)
  local o = {}
  for k, v in pairs(self.opts) do o[k] = v end
  for k, v in pairs(opts or {}) do o[k] = v end
  if opts and opts.policy ~= nil and opts.options == nil then o.options = nil end
  self.reload_opts = o
  local r = request(self, "reload")
  if r.ok then self.opts = o end
  self.reload_opts = nil
  return r
end
function Sim:rollback() return request(self, "rollback") end -- baton rollback
function Sim:stop() return request(self, "stop") end         -- baton stop

-- A figure as the app would write it: NAME's value in generation GEN.
function Sim:set_stat(name, value, gen)
  self.stats[name] = self.stats[name] or {}
  self.stats[name][gen or 0] = value
end

function Sim:active() return self.rt.active and self.rt.active.id end

function Sim:signalled(id, sig)
  for _, s in ipairs(self.signals) do
    if s.id == id and (not sig or s.sig == sig) then return true end
  end
  return false
end

function Sim:logged(pattern)
  for _, l in ipairs(self.logs) do if l:find(pattern) then return true end end
  return false
end

return _M
