-- baton.sched: the runtime's scheduler, on the supervisor's event loop.
--
-- Two kinds of coroutine run here:
--   * tasks: the runtime's own procedures (a restart, a drain), trusted
--     and unbudgeted; a task's error is logged, never raised into C;
--   * hooks: policy code, each call in a coroutine of its own, resumed
--     under the sandbox's budget (baton.sandbox). A hook over its budget is
--     abandoned where it stands; one that outlives its timeout too.
-- Both wait on keys (wait/wake) and timers (after/cancel). A task is never
-- run from inside a hook: one started while policy code runs (a drain the
-- policy asked for) begins on the next turn of the loop, so policy code
-- and runtime code never share a budget.
--
-- These are methods of the runtime object (baton.runtime mixes them in);
-- they use self.core (timer, cancel, log, stat_add) and self.limits.

local sandbox = require("baton.sandbox")

local S = {}

local traceback = debug.traceback
local text = sandbox.text

local function pack(...) return { n = select("#", ...), ... } end
S.pack = pack

function S:now() return self.clock end

-- Resumes CO, unless it was abandoned. A hook that spent its budget is
-- abandoned here and its caller told.
function S:resume(co, ...)
  if self.dead[co] then return end
  local hook = self.hooks[co]
  local res
  if hook then
    -- policy_depth says "policy code is running" (tasks wait for the next
    -- turn): it must come back down whatever the resume does.
    self.policy_depth = self.policy_depth + 1
    local called = pack(pcall(sandbox.resume, co, self.limits, ...))
    self.policy_depth = self.policy_depth - 1
    res = called[1] and pack(unpack(called, 2, called.n)) or pack(text(called[2]))
    if res[1] then
      local finish = self.finish[co]
      self:abandon(co)
      finish(false, ("policy hook '%s' exceeded its %s and was stopped"):format(hook, res[1]), true)
      return
    end
    res = pack(unpack(res, 2, res.n))
  else
    res = pack(coroutine.resume(co, ...))
  end
  if not res[1] then
    -- Only the runtime's own code gets here: hooks run inside xpcall.
    self.core.log("error", "runtime: " .. traceback(co, text(res[2])))
    return
  end
  if coroutine.status(co) == "dead" and self.finish[co] then
    local finish = self.finish[co]
    self:forget(co)
    finish(unpack(res, 2, res.n))
  end
end

function S:forget(co)
  self.hooks[co], self.finish[co] = nil, nil
end

-- A coroutine that will never run again (its timers and waits are ignored).
function S:abandon(co)
  self.dead[co] = true
  self:forget(co)
end

-- The message of a failed hook: a string error keeps its traceback; any
-- other error object is named, never converted by its own metamethods.
local function hook_error(name, err)
  if type(err) == "string" then return err end
  return ("policy hook '%s' raised an error object of type %s, not a string"):format(name, type(err))
end

-- Runs policy function FN(...) as hook NAME, in a coroutine of its own,
-- under the budget and the timeout. Waits (the caller is a task) until it
-- returns, errors, or is stopped. Returns true, results... or false and a
-- message (a string, with a traceback for errors).
function S:call_hook(name, fn, ...)
  local key, result = { hook = name }, nil
  local child = coroutine.create(function(...) return xpcall(fn, traceback, ...) end)
  self.hooks[child] = name
  self.finish[child] = function(...)
    result = pack(...)
    self:wake(key)
  end
  self:resume(child, ...)
  if not result then
    self:wait(key, self.limits.timeout)
    if not result then
      self:abandon(child)
      result = pack(false, ("policy hook '%s' did not finish within %gs and was abandoned")
        :format(name, self.limits.timeout), true)
    end
  end
  child = nil -- luacheck: ignore (the last strong reference to an abandoned hook)
  if not result[1] then
    local stopped = rawequal(result[3], true)
    result = pack(false, stopped and result[2] or hook_error(name, result[2]))
    if stopped then collectgarbage() end -- what it hoarded goes now, not at the next cycle
    self.policy_errors = self.policy_errors + 1
    self:count("baton.policy_errors")
    self.core.log("error", result[2])
  end
  return unpack(result, 1, result.n)
end

-- Runs FN(...) as a task of the runtime itself (trusted code, no budget).
-- From inside a hook it starts on the next turn of the loop instead.
function S:task(name, fn, ...)
  if self.policy_depth > 0 then
    local args = pack(...)
    self:after(0, function() self:run_task(name, fn, unpack(args, 1, args.n)) end)
    return
  end
  self:run_task(name, fn, ...)
end

-- Starts task NAME now (S:task decides when).
function S:run_task(name, fn, ...)
  local rt = self
  local co = coroutine.create(function(...)
    local ok, err = xpcall(fn, traceback, ...)
    if not ok then rt.core.log("error", ("runtime task %s: %s"):format(name, text(err))) end
  end)
  self:resume(co, ...)
end

-- Calls FN after SECONDS; returns a handle for cancel().
function S:after(seconds, fn)
  local tid = self.core.timer(math.max(0, seconds))
  self.timers[tid] = fn
  return tid
end

function S:cancel(tid)
  if tid and self.timers[tid] then
    self.timers[tid] = nil
    self.core.cancel(tid)
  end
end

-- Suspends the running coroutine until wake(KEY) or TIMEOUT seconds.
-- Returns true, ... from wake, or false on timeout.
function S:wait(key, timeout)
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

function S:wake(key, ...)
  local list = self.waiters[key]
  if not list then return end
  self.waiters[key] = nil
  for _, w in ipairs(list) do
    self:cancel(w.timer)
    self:resume(w.co, true, ...)
  end
end

function S:sleep(seconds)
  local co = coroutine.running()
  self:after(seconds, function() self:resume(co) end)
  coroutine.yield()
end

-- A TCP (PATH nil) or HTTP probe through the core; returns ok, detail,
-- and true when a failure is final (the core refused the probe itself: a
-- bad port, or a socket the supervisor holds): trying again cannot help.
function S:probe(host, port, path, timeout)
  local id, err = self.core.probe(host, port, path, timeout)
  if not id then return false, err, true end
  local woke, ok, detail = self:wait("probe:" .. id, timeout + 1)
  if not woke then return false, "no answer" end
  return ok == 1, detail
end

-- One restart at a time: later ones queue in order.
function S:lock()
  if not self.busy then
    self.busy = true
    return
  end
  local q = self.queue
  q[#q + 1] = coroutine.running()
  coroutine.yield()
end

function S:unlock()
  local nxt = table.remove(self.queue, 1)
  if nxt then
    self:resume(nxt) -- keeps busy = true: the lock passes straight on
  else
    self.busy = false
  end
end

-- Calls TICK every SECONDS until the triggers are torn down.
function S:repeating(seconds, tick)
  local tid
  local function run()
    tick()
    tid = self:after(seconds, run)
  end
  -- The timer and its undo are made together: a trigger a reload cannot
  -- tear down would outlive its policy.
  sandbox.critical(function()
    tid = self:after(seconds, run)
    self.triggers[#self.triggers + 1] = function() self:cancel(tid) end
  end)
end

-- The supervisor's own metrics (baton.restarts, ...).
function S:count(name, n) self.core.stat_add(name, n or 1) end
function S:observe(name, seconds) self.core.stat_observe(name, seconds) end

return S
