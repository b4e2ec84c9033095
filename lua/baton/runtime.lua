-- baton.runtime: runs the policy on the supervisor's event loop.
--
-- The C core does the mechanics (processes, sockets, timers) and reports
-- events; this module turns them into a small world a policy can read top to
-- bottom: a restart is a coroutine that calls gen:wait_ready(30) and simply
-- continues when the generation is ready, times out, or dies.
--
-- `core` is injected (lua_bridge.c has the real one; baton.testkit one with
-- a simulated clock). What the runtime uses of it:
--   core.spawn() -> id, pid | nil, err     core.signal(id, SIG, group) -> true | nil, err
--   core.timer(seconds) -> tid             core.cancel(tid)
--   core.now() -> seconds (monotonic)      core.log(level, message)
--   core.set_state(id, state)              core.reply(req, ok, message)
--   core.shutdown(code)
--   core.stat(name [, gen]) -> number | {count, sum} | nil
--   core.stat_add(name, n), core.stat_set(name, v), core.stat_observe(name, seconds)
--       (the supervisor's own metrics)
--   core.probe(host, port, path, timeout) -> id   (answer: event "probe")
--   core.watch(path) -> id, core.unwatch(id)      (changes: event "watch")
--   core.drain_window(gen, seconds)               (gradual drain)
--   core.spawn(state) with state "stored" | "none" | "staged"
--   core.state_info() -> nil | {version, size, generation} | false, err
--   core.state_read() -> blob | nil, err   core.state_stage(blob, version)
--       (the state blob in the fd store; optional)
--   core.arm(co), core.budget(co, ...), core.killed(co), core.disarm(co)
--       (the sandbox; optional: without them hooks run unbudgeted)
--
-- Safety rules the runtime keeps whatever the policy does:
--   * restarts (and crash restarts) run one at a time;
--   * a restart that fails, errors, or returns without promoting a new
--     generation is rolled back: every generation it spawned that is not
--     serving drains, and the serving one is untouched;
--   * a hook over its budget or timeout is stopped; a policy error is
--     logged with its traceback and counted;
--   * a state blob that is bad, or of another schema than the service
--     expects and not migrated, never reaches a generation: the restart is
--     refused (rolled back), and a generation asked for its final state
--     (gen:checkpoint) is told to resume.

local _M = {}

local Runtime = {}
Runtime.__index = Runtime
local Gen = {}
Gen.__index = Gen
local Svc = {}
Svc.__index = Svc

local traceback = debug.traceback

-- Coroutines ---------------------------------------------------------------

local function pack(...) return { n = select("#", ...), ... } end

-- Marks the result of a hook that was stopped rather than returned (a
-- table, so no value a policy returns can be mistaken for it).
local STOPPED = {}

-- Resumes CO, unless it was abandoned. Policy coroutines (see call_hook) run
-- under the budget; one that spent it is abandoned here and its caller told.
function Runtime:resume(co, ...)
  if self.dead[co] then return end
  local hook = self.hooks[co]
  if hook and self.core.budget then
    self.core.budget(co, self.limits.instructions, self.limits.memory_mb, self.limits.slice_ms)
  end
  local res = pack(coroutine.resume(co, ...))
  local killed = hook and self.core.killed and self.core.killed(co)
  if killed then
    local finish = self.finish[co]
    self:abandon(co)
    finish(false, ("policy hook '%s' exceeded its %s and was stopped"):format(hook, killed), STOPPED)
    return
  end
  if not res[1] then
    -- Only the runtime's own code can get here: hooks run inside xpcall.
    self.core.log("error", "runtime: " .. traceback(co, tostring(res[2])))
    return
  end
  if coroutine.status(co) == "dead" and self.finish[co] then
    local finish = self.finish[co]
    self:forget(co)
    finish(unpack(res, 2, res.n))
  end
end

function Runtime:forget(co)
  if self.hooks[co] and self.core.disarm then self.core.disarm(co) end
  self.hooks[co], self.finish[co] = nil, nil
end

-- A coroutine that will never run again (its timers and waits are ignored).
function Runtime:abandon(co)
  self.dead[co] = true
  self:forget(co)
end

-- Runs policy function FN(...) as hook NAME, in a coroutine of its own,
-- under the instruction budget, the memory cap and the timeout. Waits (the
-- caller is a task) until it returns, errors, or is stopped. Returns true,
-- results... or false, message (with a traceback for errors).
function Runtime:call_hook(name, fn, ...)
  local key, result = { hook = name }, nil
  local child = coroutine.create(function(...) return xpcall(fn, traceback, ...) end)
  self.hooks[child] = name
  self.finish[child] = function(...)
    result = pack(...)
    self:wake(key)
  end
  if self.core.arm then self.core.arm(child) end
  self:resume(child, ...)
  if not result then
    self:wait(key, self.limits.timeout)
    if not result then
      self:abandon(child)
      result = pack(false, ("policy hook '%s' did not finish within %gs and was abandoned")
        :format(name, self.limits.timeout), STOPPED)
    end
  end
  child = nil -- luacheck: ignore (the last strong reference to an abandoned hook)
  if result[3] == STOPPED then
    result.n = 2
    collectgarbage() -- what it hoarded goes now, not at the next cycle
  end
  if not result[1] then
    self.policy_errors = self.policy_errors + 1
    self:count("baton.policy_errors")
    self.core.log("error", tostring(result[2]))
  end
  return unpack(result, 1, result.n)
end

-- Runs FN(...) as a task of the runtime itself (trusted code, no budget).
-- A task's error is logged, never raised into C.
function Runtime:task(name, fn, ...)
  local rt = self
  local co = coroutine.create(function(...)
    local ok, err = xpcall(fn, traceback, ...)
    if not ok then
      rt.core.log("error", ("runtime task %s: %s"):format(name, tostring(err)))
    end
  end)
  self:resume(co, ...)
  return co
end

-- Calls FN after SECONDS; returns a handle for cancel().
function Runtime:after(seconds, fn)
  local tid = self.core.timer(math.max(0, seconds))
  self.timers[tid] = fn
  return tid
end

function Runtime:cancel(tid)
  if tid and self.timers[tid] then
    self.timers[tid] = nil
    self.core.cancel(tid)
  end
end

-- Suspends the running task until wake(KEY) or TIMEOUT seconds.
-- Returns true, ... from wake, or false on timeout.
function Runtime:wait(key, timeout)
  local co = coroutine.running()
  assert(co, "wait() outside a task")
  local w = { co = co }
  local list = self.waiters[key]
  if not list then
    list = {}
    self.waiters[key] = list
  end
  list[#list + 1] = w
  if timeout then
    w.timer = self:after(timeout, function()
      local l = self.waiters[key]
      for i, x in ipairs(l or {}) do
        if x == w then table.remove(l, i) break end
      end
      if l and #l == 0 then self.waiters[key] = nil end
      self:resume(co, false)
    end)
  end
  return coroutine.yield()
end

function Runtime:wake(key, ...)
  local list = self.waiters[key]
  if not list then return end
  self.waiters[key] = nil
  for _, w in ipairs(list) do
    self:cancel(w.timer)
    self:resume(w.co, true, ...)
  end
end

-- A TCP (PATH nil) or HTTP probe through the core; returns ok, detail.
function Runtime:probe(host, port, path, timeout)
  local id, err = self.core.probe(host, port, path, timeout)
  if not id then return false, err end
  local woke, ok, detail = self:wait("probe:" .. id, timeout + 1)
  if not woke then return false, "no answer" end
  return ok == 1, detail
end

function Runtime:sleep(seconds)
  local co = coroutine.running()
  self:after(seconds, function() self:resume(co) end)
  coroutine.yield()
end

-- One restart at a time: later ones queue in order.
function Runtime:lock()
  if not self.busy then
    self.busy = true
    return
  end
  local q = self.queue
  q[#q + 1] = coroutine.running()
  coroutine.yield()
end

function Runtime:unlock()
  local nxt = table.remove(self.queue, 1)
  if nxt then
    self:resume(nxt) -- keeps busy = true: the lock passes straight on
  else
    self.busy = false
  end
end

-- The supervisor's own metrics (baton.restarts, ...), when the core has stats.
function Runtime:count(name, n)
  if self.core.stat_add then self.core.stat_add(name, n or 1) end
end

function Runtime:observe(name, seconds)
  if self.core.stat_observe then self.core.stat_observe(name, seconds) end
end

-- A read-only view of the stats region: t[name] is the service total or,
-- with GEN, that generation's figure.
local function stats_view(core, gen)
  return setmetatable({}, {
    __index = function(_, name)
      if not core.stat then return nil end
      return core.stat(name, gen)
    end,
    __newindex = function() error("stats are read-only", 2) end,
  })
end

-- Generations ---------------------------------------------------------------

function Gen:alive() return not self.exited end

function Gen:exit_reason()
  if self.exit_signal and self.exit_signal ~= 0 then
    return ("killed by signal %d"):format(self.exit_signal)
  end
  return ("exit code %s"):format(tostring(self.exit_code))
end

function Gen:set_state(state)
  self.state = state
  self.rt.core.set_state(self.id, state)
end

-- "{generation}" and "{pid}" in a probe address become this generation's;
-- "{generation+N}" becomes the generation number plus N (a port per
-- generation: {generation+9000}).
function Gen:expand(text)
  text = text:gsub("{generation%+(%d+)}", function(n) return tostring(self.id + tonumber(n)) end)
  return (text:gsub("{generation}", tostring(self.id)):gsub("{pid}", tostring(self.pid)))
end

local function split_hostport(hp)
  local host, port = hp:match("^%[([^%]]+)%]:(%d+)$")
  if not host then host, port = hp:match("^([^:]+):(%d+)$") end
  return host, tonumber(port)
end

-- One round of the probes in OPTS; returns true, or false and why.
function Gen:probe_once(opts, timeout)
  local rt = self.rt
  if opts.tcp then
    local addr = self:expand(opts.tcp)
    local host, port = split_hostport(addr)
    if not host then error("wait_ready: tcp must be HOST:PORT, got " .. addr, 0) end
    local ok, detail = rt:probe(host, port, nil, timeout)
    if not ok then return false, ("tcp %s: %s"):format(addr, detail) end
  end
  if opts.http then
    local url = self:expand(opts.http)
    local hp, path = url:match("^http://([^/]+)(/?.*)$")
    local host, port = split_hostport(hp or "")
    if not host then error("wait_ready: http must be http://HOST:PORT/PATH, got " .. url, 0) end
    local ok, detail = rt:probe(host, port, path ~= "" and path or "/", timeout)
    local status = ok and tonumber(detail:match("status (%d+)"))
    if status ~= (opts.status or 200) then
      return false, ("GET %s: %s"):format(url, detail)
    end
  end
  if opts.check then
    local ok, why = opts.check(self)
    if not ok then return false, "check: " .. tostring(why or "not ready") end
  end
  return true
end

-- Waits until the generation is ready. OPTS is a number of seconds (wait
-- for READY=1) or a table:
--   timeout   seconds for everything (default: the service's ready_timeout)
--   notify    wait for READY=1 first (default true)
--   tcp       "HOST:PORT" that must accept a connection
--   http      "http://HOST:PORT/PATH" that must answer `status` (default 200)
--   check     function(gen) -> ok, why: any test of your own
--   interval  seconds between probe rounds (default 0.2)
-- Addresses may use {generation} and {pid}. Returns true, or false and why.
function Gen:wait_ready(opts)
  local rt = self.rt
  if type(opts) ~= "table" then opts = { timeout = opts } end
  local timeout = opts.timeout or rt.cfg.ready_timeout
  local deadline = rt.core.now() + timeout
  local function exited()
    return false, ("generation %d exited before it was ready (%s)"):format(self.id, self:exit_reason())
  end
  if opts.notify ~= false then
    while not self.ready and not self.exited do
      local left = deadline - rt.core.now()
      if left <= 0 then break end
      rt:wait(self.key, left)
    end
    if self.exited then return exited() end
    if not self.ready then
      return false, ("generation %d was not ready within %gs"):format(self.id, timeout)
    end
  end
  if not (opts.tcp or opts.http or opts.check) then return true end
  local last = "no probe answered"
  while true do
    if self.exited then return exited() end
    local left = deadline - rt.core.now()
    if left <= 0.05 then
      return false, ("generation %d failed its readiness check within %gs: %s"):format(self.id, timeout, last)
    end
    local ok, why = self:probe_once(opts, math.min(left, opts.probe_timeout or 1))
    if ok then return true end
    -- A definite answer (503, refused) says more than a probe cut short.
    if not (why:find("timed out") and last ~= "no probe answered") then last = why end
    rt:sleep(math.max(0, math.min(opts.interval or 0.2, deadline - rt.core.now())))
  end
end

-- Waits until the main process exits. Returns true, or false on timeout.
function Gen:wait_exit(timeout)
  local rt = self.rt
  local deadline = timeout and rt.core.now() + timeout
  while not self.exited do
    local left = deadline and deadline - rt.core.now()
    if left and left <= 0 then return false end
    rt:wait(self.key, left)
  end
  return true
end

local SIGNALS = { TERM = true, INT = true, QUIT = true, HUP = true, USR1 = true,
  USR2 = true, KILL = true, WINCH = true, CONT = true, STOP = true }

-- Sends SIG ("TERM", "SIGTERM", ...) to the main process.
function Gen:signal(sig)
  sig = tostring(sig):upper():gsub("^SIG", "")
  if not SIGNALS[sig] then return nil, "unknown signal " .. sig end
  if self.exited then return nil, "generation has exited" end
  return self.rt.core.signal(self.id, sig, false)
end

-- SIGKILL to the whole process group: the app and anything it forked.
function Gen:kill()
  if self.exited then return true end
  return self.rt.core.signal(self.id, "KILL", true)
end

-- TERM, then KILL after GRACE seconds; returns once the process is gone.
function Gen:stop(grace)
  if self.exited then return true end
  self:set_state("draining")
  self:signal("TERM")
  if not self:wait_exit(grace or 5) then
    self:kill()
    self:wait_exit(10)
  end
  return self.exited
end

-- Asks the generation for its final state, for a handover: sends OPTS.signal
-- (default "USR1"), then waits until it stores a state blob (FDSTORE with
-- the state name: baton_state_save), at most OPTS.timeout seconds (default
-- 10). The app is expected to stop taking writes, save, and wait: to be
-- drained once the next generation serves, or told to carry on with
-- OPTS.resume (default "USR2"), which the runtime sends by itself if the
-- restart rolls back. Returns true, or false and why.
function Gen:checkpoint(opts)
  opts = opts or {}
  local rt = self.rt
  local name = rt:state_name()
  local before = self.stored[name] or 0
  local ok, err = self:signal(opts.signal or "USR1")
  if not ok then return false, ("generation %d: cannot ask for its state: %s"):format(self.id, tostring(err)) end
  self.resume_signal = opts.resume or "USR2"
  if rt.current then table.insert(rt.current.checkpointed, self) end
  local timeout = opts.timeout or 10
  local deadline = rt.core.now() + timeout
  while (self.stored[name] or 0) == before and not self.exited do
    local left = deadline - rt.core.now()
    if left <= 0 then
      return false, ("generation %d did not store its state within %gs"):format(self.id, timeout)
    end
    rt:wait(self.key, left)
  end
  if self.exited then
    return false, ("generation %d exited while storing its state (%s)"):format(self.id, self:exit_reason())
  end
  rt.core.log("info", ("generation %d stored its state for the handover"):format(self.id))
  return true
end

-- Asks the generation to finish its work and exit, in the background.
-- Returns at once. OPTS:
--   signal    sent first (default "TERM")
--   deadline  seconds until what is left is killed (default drain_timeout)
--   done      function(gen) -> true once it is idle: the drain ends early
--             (its process group is killed) instead of waiting out the
--             deadline; polled every `poll` seconds (default 0.5)
--   gradual   seconds of gradual drain first: the generation keeps serving
--             while apps using libbaton (baton_drain_progress) shed
--             connections with a probability rising from 0 to 1; the
--             signal is sent at the end of it
function Gen:drain(opts)
  opts = opts or {}
  if self.draining or self.exited then return end
  local rt = self.rt
  self.draining = true
  self.drain_started = rt.core.now()
  self:set_state("draining")
  local deadline = opts.deadline or rt.cfg.drain_timeout
  rt:task("drain of generation " .. self.id, function()
    if opts.gradual and opts.gradual > 0 then
      if rt.core.drain_window then rt.core.drain_window(self.id, opts.gradual) end
      rt.core.log("info", ("generation %d drains gradually for %gs"):format(self.id, opts.gradual))
      self:wait_exit(opts.gradual)
    end
    local ok, err = self:signal(opts.signal or "TERM")
    if not ok and not self.exited then
      rt.core.log("warn", ("generation %d: drain signal failed: %s"):format(self.id, tostring(err)))
    end
    local ends = rt.core.now() + deadline
    while not self.exited do
      local left = ends - rt.core.now()
      if left <= 0 then
        rt.core.log("warn", ("generation %d still running at its drain deadline (%gs): killing it")
          :format(self.id, deadline))
        self:kill()
        self:wait_exit(10)
        break
      end
      self:wait_exit(opts.done and math.min(opts.poll or 0.5, left) or left)
      if not self.exited and opts.done then
        local called, idle = rt:call_hook("drain done", opts.done, self)
        if called and idle then
          rt.core.log("info", ("generation %d is idle: ending its drain early"):format(self.id))
          self:kill()
          self:wait_exit(10)
        end
      end
    end
    local took = rt.core.now() - self.drain_started
    rt:observe("baton.drain_seconds", took)
    rt.core.log("info", ("generation %d drained in %.3fs (%s)"):format(self.id, took, self:exit_reason()))
  end)
end

-- The service, as a policy sees it -------------------------------------------

-- Starts a generation. It receives the listeners, the fd store and the
-- state blob, checked and, when the service expects another schema,
-- migrated. Returns it, or nil and why (a refused state blob included).
function Svc:spawn()
  local rt = self.rt
  if rt.stopping then return nil, "the supervisor is stopping" end
  local state, why = rt:state_for_spawn()
  if not state then return nil, why end
  local id, pid = rt.core.spawn(state)
  if not id then return nil, pid end
  local g = setmetatable({ rt = rt, id = id, pid = pid, key = "gen:" .. id, stored = {},
    state = "starting", started = rt.core.now(), stats = stats_view(rt.core, id) }, Gen)
  rt.gens[id] = g
  if rt.current then table.insert(rt.current.spawned, g) end
  rt.core.log("info", ("generation %d started (pid %d)"):format(id, pid))
  return g
end

-- Makes G the generation that serves. The previous one keeps running until
-- the policy drains it.
function Svc:promote(g)
  assert(getmetatable(g) == Gen, "promote() needs a generation")
  if not g.ready or g.exited then
    return nil, ("generation %d is not ready"):format(g.id)
  end
  self.active = g
  g.promoted_at = self.rt.core.now()
  g:set_state("active")
  return true
end

function Svc:generations()
  local out = {}
  for _, g in pairs(self.rt.gens) do
    if not g.exited then out[#out + 1] = g end
  end
  table.sort(out, function(a, b) return a.id < b.id end)
  return out
end

-- Opens (or closes) a window in which `baton rollback` is honoured: the
-- previous generation still serves, so going back to it is possible. The
-- runtime closes it when the procedure ends, whatever way it ends.
function Svc:rollback_window(open)
  self.rt.window_open = open and true or false
end

-- Waits up to SECONDS for `baton rollback`; true if one came (or is pending).
function Svc:rollback_requested(seconds)
  local rt = self.rt
  if rt.rollback_req == nil and seconds and seconds > 0 then rt:wait("rollback", seconds) end
  return rt.rollback_req ~= nil
end

function Svc:log(level, msg) self.rt.core.log(level, msg) end
function Svc:now() return self.rt.core.now() end
function Svc:sleep(s) return self.rt:sleep(s) end

-- Seconds to wait before the next crash restart: 0, 1, 2, 4 ... 30. The
-- count starts again once a generation has served for a minute.
function Svc:backoff(died)
  local rt = self.rt
  if died and died.promoted_at and rt.core.now() - died.promoted_at > 60 then
    self.crashes = 0
  end
  self.crashes = (self.crashes or 0) + 1
  if self.crashes == 1 then return 0 end
  return math.min(30, 2 ^ (self.crashes - 2))
end

-- Triggers: set up by the policy's init hook, torn down on reload -----------

-- Queues a restart, as SIGHUP or `baton restart` would (nobody waits for
-- the answer; it is logged).
function Svc:restart(reason)
  self.rt:restart(nil, reason)
end

-- Calls FN(svc, path) whenever the file at PATH (relative to the service
-- file) changes: written, or replaced by a rename.
function Svc:watch(path, fn)
  local rt = self.rt
  if path:sub(1, 1) ~= "/" and rt.cfg.dir and rt.cfg.dir ~= "." then path = rt.cfg.dir .. "/" .. path end
  local id, err = rt.core.watch(path)
  if not id then return nil, ("cannot watch %s: %s"):format(path, err) end
  rt.watch_fns[id] = function() rt:trigger("watch " .. path, fn, path) end
  rt.triggers[#rt.triggers + 1] = function() rt.watch_fns[id] = nil; rt.core.unwatch(id) end
  return true
end

-- Calls FN(svc) every SECONDS.
function Svc:every(seconds, fn)
  local rt = self.rt
  rt:repeating(seconds, function() rt:trigger("every " .. seconds .. "s", fn) end)
  return true
end

-- Calls FN(svc) when PREDICATE(svc) becomes true (checked every SECONDS),
-- once per time it turns true: a threshold on live figures, say
-- svc:when(5, function(s) return (s.stats["http.errors"] or 0) > 1000 end, ...).
function Svc:when(seconds, predicate, fn)
  local rt, was = self.rt, false
  rt:repeating(seconds, function()
    rt:task("when", function()
      local ok, now = rt:call_hook("when", predicate, self)
      now = ok and now and true or false
      if now and not was then rt:trigger("when", fn) end
      was = now
    end)
  end)
  return true
end

-- Calls TICK every SECONDS until the triggers are torn down.
function Runtime:repeating(seconds, tick)
  local tid
  local function run()
    tick()
    tid = self:after(seconds, run)
  end
  tid = self:after(seconds, run)
  self.triggers[#self.triggers + 1] = function() self:cancel(tid) end
end

-- Runs a trigger's callback as a budgeted hook.
function Runtime:trigger(name, fn, ...)
  if self.stopping then return end
  local args = pack(...)
  self:task(name, function() self:call_hook(name, fn, self.svc, unpack(args, 1, args.n)) end)
end

function Runtime:teardown_triggers()
  for _, undo in ipairs(self.triggers) do undo() end
  self.triggers = {}
end

-- The policy's init hook: where it sets up its triggers.
function Runtime:init()
  self:teardown_triggers()
  local hook = self.policy.init
  if hook then self:task("init", function() self:call_hook("init", hook, self.svc) end) end
end

-- State ---------------------------------------------------------------------

function Runtime:state_name()
  return self.cfg.state and self.cfg.state.name or "state"
end

-- Which state blob the next generation gets: "stored" (as it is, or none
-- is stored), "staged" (migrated), "none" (refused, but nothing serves:
-- a generation without its state beats no generation); or nil and why the
-- spawn must not happen (refused while a generation serves).
function Runtime:state_for_spawn()
  local core = self.core
  if not core.state_info then return "stored" end
  local info, err = core.state_info()
  if info == nil then return "stored" end
  local want = self.cfg.state and self.cfg.state.version
  local problem
  if info == false then
    problem = err
  elseif want == nil or info.version == want then
    return "stored"
  else
    problem = self:migrate(info, want)
    if not problem then return "staged" end
  end
  problem = "state refused: " .. problem
  self:count("baton.state_refused")
  local active = self.svc.active
  if active and active:alive() then return nil, problem end
  core.log("error", problem .. "; nothing serves, so the new generation starts without it")
  return "none"
end

-- Runs the policy's migrate(blob, from, to) on the stored blob and stages
-- what it returns. Returns nil, or why the blob cannot be used.
function Runtime:migrate(info, want)
  local hook = self.policy.migrate or self.svc.options.migrate
  if type(hook) ~= "function" then
    return ("the blob has schema %d, the service expects %d (state.version), and the policy " ..
      "has no migrate hook"):format(info.version, want)
  end
  local blob, rerr = self.core.state_read()
  if not blob then return rerr end
  local ok, out, why = self:call_hook("migrate", hook, blob, info.version, want)
  blob = nil -- luacheck: ignore (let the collector have it)
  if not ok then return "the migrate hook failed: " .. tostring(out):match("^[^\n]*") end
  if out == nil or out == false then
    return ("migration from schema %d to %d refused: %s"):format(info.version, want,
      tostring(why or "no reason given"))
  end
  if type(out) ~= "string" then
    return ("migrate must return the new blob (a string) or nil and why, not a %s"):format(type(out))
  end
  local staged, serr = self.core.state_stage(out, want)
  if not staged then return serr end
  self.core.log("info", ("state migrated from schema %d to %d (%d bytes, now %d)")
    :format(info.version, want, info.size, #out))
  self:count("baton.state_migrations")
  return nil
end

-- Procedures ----------------------------------------------------------------

-- Runs policy hook NAME under the lock and the rollback rule.
-- Returns ok, message.
function Runtime:procedure(name, ...)
  local svc = self.svc
  local old = svc.active
  -- Captured now: a reload during this procedure does not change its policy.
  local hook = self.policy[name] or self.default[name]
  self.current = { spawned = {}, checkpointed = {} }
  local ok, res, why = self:call_hook(name, hook, svc, ...)
  local spawned, checkpointed = self.current.spawned, self.current.checkpointed
  self.current = nil
  self.window_open = false

  local new = svc.active
  if ok and new and new ~= old and new:alive() then
    return true, ("generation %d took over%s"):format(new.id,
      old and (" from generation " .. old.id) or "")
  end
  local reason
  if not ok then
    reason = "policy error: " .. tostring(res):match("^[^\n]*")
  else
    reason = why or (type(res) == "string" and res) or "the policy did not promote a new generation"
  end
  -- Rollback: what this procedure started and did not promote drains (it
  -- may already hold connections); the serving generation is not touched.
  for _, g in ipairs(spawned) do
    if g ~= svc.active and g:alive() then g:drain{ deadline = self.cfg.drain_timeout } end
  end
  -- A generation that stored its final state and waits carries on.
  for _, g in ipairs(checkpointed) do
    if g == svc.active and g:alive() and not g.draining then
      self.core.log("info", ("generation %d resumes (SIG%s)"):format(g.id, g.resume_signal))
      g:signal(g.resume_signal)
    end
  end
  return false, "rolled back: " .. reason
end

function Runtime:restart(req, why)
  self:task("restart", function()
    self:lock()
    local ok, msg
    if self.stopping then
      ok, msg = false, "the supervisor is stopping"
    else
      self.core.log("info", "restart requested" .. (why and (" (" .. why .. ")") or ""))
      local t0 = self.core.now()
      ok, msg = self:procedure("restart", self.svc.active)
      if self.rollback_req then
        local rreq = self.rollback_req
        self.rollback_req = nil
        if rreq ~= true then
          self.core.reply(rreq, not ok, ok and "the restart took over before the rollback" or
            ("rolled back; generation %d serves"):format(self.svc.active and self.svc.active.id or 0))
        end
      end
      if ok then
        self:count("baton.restarts")
        self:observe("baton.restart_seconds", self.core.now() - t0)
      else
        self:count("baton.rollbacks")
      end
      self.core.log(ok and "info" or "error", "restart: " .. msg)
    end
    self:unlock()
    self.core.reply(req, ok, msg)
  end)
end

function Runtime:start()
  self:task("start", function()
    self:lock()
    local ok, msg = self:procedure("start")
    self:unlock()
    if ok then
      self.core.log("info", "service '" .. self.cfg.name .. "' is up: " .. msg)
    elseif not self.stopping then
      self.core.log("error", "service '" .. self.cfg.name .. "' failed to start: " .. msg)
      self:stop(nil, 1)
    end
  end)
end

-- The serving generation exited on its own.
function Runtime:died(g)
  self:task("recovery", function()
    self:lock()
    if not self.stopping and not (self.svc.active and self.svc.active:alive()) then
      local ok, msg = self:procedure("died", g)
      self.core.log(ok and "info" or "error", "recovery after generation " .. g.id .. ": " .. msg)
      if not ok and not self.stopping then
        -- Keep trying, with the policy's backoff: a service without a
        -- serving generation is the one state we must not stay in.
        self:after(0, function() self:died(g) end)
      end
    end
    self:unlock()
  end)
end

-- `baton rollback`: honoured by a restart that is in its window (see
-- Svc:rollback_requested); answered once that restart has rolled back.
function Runtime:rollback(req)
  if not self.window_open then
    self.core.reply(req, false, "nothing to roll back: no restart is in a window where the " ..
      "previous generation still serves (a policy such as bluegreen opens one)")
    return
  end
  if self.rollback_req then
    self.core.reply(req, false, "a rollback is already under way")
    return
  end
  self.rollback_req = req or true
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
  self.core.log("info", "stopping: draining every generation")
  self:task("stop", function()
    self:call_hook("stop", self.policy.stop or self.default.stop, self.svc)
    -- Whatever the hook did, nothing outlives the stop: drain what is left,
    -- including generations a restart in flight may still start.
    while true do
      local live = self.svc:generations()
      if #live == 0 then break end
      for _, g in ipairs(live) do g:drain() end
      self:wait("any-exit", 1)
    end
    self.core.reply(req, true, "stopped")
    self.core.shutdown(code or 0)
  end)
end

-- A new service file and policy, already validated. Procedures under way
-- keep the hook they started with; the next ones use the new policy.
function Runtime:reload(cfg)
  self.cfg, self.policy, self.svc.config = cfg, cfg.policy, cfg
  self.svc.options = cfg.policy_options or {}
  for k, v in pairs(_M.LIMITS) do self.limits[k] = (cfg.policy_limits or {})[k] or v end
  if not self.stopping then self:init() end
end

-- Events from the C core ------------------------------------------------------

function Runtime:dispatch(event, a, b, c)
  local g = type(a) == "number" and self.gens[a] or nil
  if event == "timer" then
    local fn = self.timers[a]
    self.timers[a] = nil
    if fn then fn() end
  elseif event == "ready" then
    if g and not g.ready then
      g.ready = true
      g.ready_at = self.core.now()
      if g.state == "starting" then g:set_state("ready") end
      self.core.log("info", ("generation %d is ready (%.3fs after start)"):format(g.id, g.ready_at - g.started))
      self:wake(g.key)
    end
  elseif event == "stored" then
    if g then
      g.stored[b] = (g.stored[b] or 0) + 1
      self:wake(g.key)
    end
  elseif event == "stopping" then
    if g then g.stopping = true end
  elseif event == "exit" then
    if g and not g.exited then
      local expected = g.draining or g.state == "draining"
      g.exited, g.exit_code, g.exit_signal = true, b, c
      g.state = "exited"
      -- The core says nothing more about it; policies that still hold it
      -- keep it, the runtime lets it go (1,000 restarts must not grow).
      self.gens[a] = nil
      local lvl = expected and "info" or "warn"
      self.core.log(lvl, ("generation %d (pid %d) exited: %s"):format(g.id, g.pid, g:exit_reason()))
      self:wake(g.key)
      self:wake("any-exit")
      if self.svc.active == g then
        -- The serving generation is gone. Drained on purpose (a policy that
        -- stops the old one before the new one serves) or crashed: either
        -- way nothing serves, and recovery starts.
        self.svc.active = nil
        if not self.stopping then
          if not g.draining then self:count("baton.crashes") end
          self:died(g)
        end
      end
    end
  elseif event == "probe" then
    self:wake("probe:" .. a, b, c)
  elseif event == "reload" then
    self:reload(a)
  elseif event == "watch" then
    local fn = self.watch_fns[a]
    if fn then fn() end
  elseif event == "start" then
    self:init()
    self:start()
  elseif event == "restart" then
    self:restart(a, b)
  elseif event == "rollback" then
    self:rollback(a)
  elseif event == "stop" then
    self:stop(a)
  else
    self.core.log("warn", "runtime: unknown event " .. tostring(event))
  end
end

-- What one policy hook may use: instructions and milliseconds per run
-- between two waits (the event loop waits while it runs), the Lua VM's
-- memory, and seconds from start to finish.
_M.LIMITS = { instructions = 20000000, slice_ms = 20, memory_mb = 256, timeout = 600 }

function _M.new(core, cfg, default_policy)
  local limits = {}
  for k, v in pairs(_M.LIMITS) do limits[k] = (cfg.policy_limits or {})[k] or v end
  local rt = setmetatable({
    core = core, cfg = cfg, policy = cfg.policy, default = default_policy, limits = limits,
    hooks = {}, finish = {}, dead = setmetatable({}, { __mode = "k" }),
    triggers = {}, watch_fns = {},
    gens = {}, waiters = {}, timers = {}, queue = {}, busy = false,
    stopping = false, policy_errors = 0,
  }, Runtime)
  rt.svc = setmetatable({ rt = rt, config = cfg, stats = stats_view(core),
    options = cfg.policy_options or {} }, Svc)
  return rt
end

_M.Runtime, _M.Gen, _M.Svc = Runtime, Gen, Svc
return _M
