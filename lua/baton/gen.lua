-- baton.gen: a generation, as the runtime keeps it and as a policy sees it.
--
-- The runtime owns a record per generation: its lifecycle (starting,
-- ready, active, draining, exited) lives here and nowhere else; the C core
-- keeps only process facts (pid, exit, last STATUS=). A policy never holds
-- a record: it gets a handle, an empty table whose protected metatable
-- reads the record's public fields and offers its methods. Whatever a
-- policy does to a handle (rawset, a new field) changes its own view only.

local sandbox = require("baton.sandbox")

local Gen = {}
Gen.__index = Gen

local text = sandbox.text

local methods = {}

-- Marks the metatables of handles: a policy cannot read a protected
-- metatable, so it cannot make a table that passes for a handle.
local HANDLE = {}

-- What a policy can read of a generation.
local FIELDS = {
  id = true, pid = true, state = true, ready = true, ready_at = true, exited = true,
  exit_code = true, exit_signal = true, started = true, promoted_at = true,
  draining = true, drain_started = true, stopping = true, stats = true,
}

-- What the kernel says of a generation, read when a policy asks (once per
-- tick of the loop): its open connections on the service's listeners
-- (established and closing), of which closing, its processes, resident
-- memory in bytes, CPU seconds, how many of the service's listeners it
-- still holds (while it does, it may accept more), and which read of the
-- kernel these come from (a number that grows with each fresh read), and
-- whether its main process is stopped (SIGSTOP) as that read ends. 0 once
-- it has exited; connections nil when the kernel could not be read.
-- A drain's polls back off while many connections remain (Gen:start_drain).
local POLL_PER, POLL_BACKOFF = 100, 10

local KERNEL = { connections = true, closing = true, processes = true, rss = true, cpu = true,
  listening = true, read = true, stopped = true }

function Gen:figure(k)
  if self.exited then return 0 end
  local f = self.rt:figures(self.id)
  return f and f[k]
end

-- The handle of record G: its own metatable holds G, so the handle lives
-- exactly as long as the policy or the record holds it.
local function new_handle(g)
  return setmetatable({}, {
    __index = function(_, k)
      if FIELDS[k] then return g[k] end
      if KERNEL[k] then return g:figure(k) end
      return methods[k]
    end,
    __newindex = function(_, k)
      error(("a generation is read-only (field '%s')"):format(text(k)), 2)
    end,
    __metatable = "baton generation",
    kind = HANDLE, record = g,
  })
end

-- A new record for generation ID (pid PID), spawned by runtime RT; PORTS
-- are its per_generation listeners' ports, by name.
function Gen.new(rt, id, pid, stats, ports)
  local g = setmetatable({ rt = rt, id = id, pid = pid, key = "gen:" .. id, stored = {},
    state = "starting", started = rt:now(), stats = stats, ports = ports or {} }, Gen)
  g.handle = new_handle(g)
  return g
end

-- The record behind a policy's value, or nil when it is none.
function Gen.of(h)
  local mt = type(h) == "table" and debug.getmetatable(h)
  return mt and rawequal(rawget(mt, "kind"), HANDLE) and rawget(mt, "record") or nil
end

function Gen:alive() return not self.exited end

function Gen:exit_reason()
  if self.exit_signal and self.exit_signal ~= 0 then
    return ("killed by signal %d"):format(self.exit_signal)
  end
  if self.exit_code == -1 and self.adopted_at then
    -- Not our child: the kernel tells its status to its parent only.
    return "exit status unknown (an adopted process)"
  end
  return ("exit code %s"):format(tostring(self.exit_code))
end

-- "{generation}" and "{pid}" in a probe address become this generation's;
-- "{generation+N}" becomes the generation number plus N (a port per
-- generation: {generation+9000}); "{port:NAME}" the port of its own
-- per_generation listener NAME.
function Gen:expand(s)
  if type(s) ~= "string" then error("a probe address must be a string, got " .. type(s), 3) end
  s = s:gsub("{port:([%w_.-]+)}", function(name)
    local port = self.ports[name]
    if not port then
      error(("{port:%s}: generation %d has no per_generation listener '%s'"):format(name, self.id, name), 0)
    end
    return tostring(port)
  end)
  s = s:gsub("{generation%+(%d+)}", function(n) return tostring(self.id + tonumber(n)) end)
  return (s:gsub("{generation}", tostring(self.id)):gsub("{pid}", tostring(self.pid)))
end

local function split_hostport(hp)
  local host, port = hp:match("^%[([^%]]+)%]:(%d+)$")
  if not host then host, port = hp:match("^([^:]+):(%d+)$") end
  return host, tonumber(port)
end

-- One round of the probes in OPTS; returns true, or false, why and
-- whether that is final (the probe was refused before it ran: a tcp probe
-- of the service's own listener, which would pass whatever the app does).
function Gen:probe_once(opts, timeout)
  local rt = self.rt
  if opts.tcp then
    local addr = self:expand(opts.tcp)
    local host, port = split_hostport(addr)
    if not host then error("wait_ready: tcp must be HOST:PORT, got " .. addr, 0) end
    -- Its per_generation listener was bound by the supervisor and passed
    -- in listening: the kernel completes a connection to it whether or
    -- not the app accepts, as for a shared listener (which the core
    -- refuses by address).
    for name, p in pairs(self.ports) do
      if p == port then
        return false, ("tcp %s: it is generation %d's per_generation listener '%s', which baton bound " ..
          "for it: the kernel completes a connection whether or not the app accepts; use an http " ..
          "probe there"):format(addr, self.id, name), true
      end
    end
    local ok, detail, final = rt:probe(host, port, nil, timeout)
    if not ok then return false, ("tcp %s: %s"):format(addr, detail), final end
  end
  if opts.http then
    local url = self:expand(opts.http)
    local hp, path = url:match("^http://([^/]+)(/?.*)$")
    local host, port = split_hostport(hp or "")
    if not host then error("wait_ready: http must be http://HOST:PORT/PATH, got " .. url, 0) end
    local ok, detail, final = rt:probe(host, port, path ~= "" and path or "/", timeout)
    local status = ok and tonumber(detail:match("status (%d+)"))
    if status ~= (opts.status or 200) then
      return false, ("GET %s: %s"):format(url, detail), final
    end
  end
  if opts.check then
    local ok, why = opts.check(self.handle)
    if not ok then return false, "check: " .. text(why or "not ready") end
  end
  return true
end

-- Marks the generation ready (READY=1 came, or a readiness check passed)
-- and wakes whoever waits for it. HOW says which, in the log.
function Gen:mark_ready(how)
  if self.ready then return end
  local rt = self.rt
  self.ready, self.ready_at = true, rt:now()
  if self.state == "starting" then self.state = "ready" end
  rt.core.log("info", ("generation %d is ready (%s, %.3fs after start)"):format(self.id, how,
    self.ready_at - self.started))
  rt:wake(self.key)
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
  if type(timeout) ~= "number" then error("wait_ready: timeout must be a number of seconds", 3) end
  local deadline = rt:now() + timeout
  local function exited()
    local last = rt.core.output(self.id, 5)
    return false, ("generation %d exited before it was ready (%s)%s"):format(self.id, self:exit_reason(),
      last ~= "" and ("; its last stderr: " .. last) or "")
  end
  if opts.notify ~= false then
    while not self.ready and not self.exited do
      local left = deadline - rt:now()
      if left <= 0 then break end
      rt:wait(self.key, left)
    end
    if self.exited then return exited() end
    if not self.ready then
      -- The usual cause with an app not written for systemd: it never says
      -- READY=1. Say what to do about it.
      return false, ("generation %d was not ready within %gs (no READY=1 came: for an app that does " ..
        "not send it, use ready = { notify = false, http = ... }, a probe of its own port)"):format(self.id, timeout)
    end
  end
  if not (opts.tcp or opts.http or opts.check) then return true end
  local last = "no probe answered"
  while true do
    if self.exited then return exited() end
    local left = deadline - rt:now()
    if left <= 0.05 then
      return false, ("generation %d failed its readiness check within %gs: %s"):format(self.id, timeout, last)
    end
    local ok, why, final = self:probe_once(opts, math.min(left, opts.probe_timeout or 1))
    if final then
      return false, ("generation %d cannot be checked: %s"):format(self.id, why)
    end
    if ok then
      -- With notify = false the check is the app's readiness: it may be
      -- promoted. With READY=1 as well, it already was ready.
      self:mark_ready("its readiness check passed")
      return true
    end
    -- A definite answer (503, refused) says more than a probe cut short.
    if not (why:find("timed out") and last ~= "no probe answered") then last = why end
    rt:sleep(math.max(0, math.min(opts.interval or 0.2, deadline - rt:now())))
  end
end

-- Waits until the main process exits. Returns true, or false on timeout.
function Gen:wait_exit(timeout)
  local rt = self.rt
  local deadline = timeout and rt:now() + timeout
  while not self.exited do
    local left = deadline and deadline - rt:now()
    if left and left <= 0 then return false end
    rt:wait(self.key, left)
  end
  return true
end

-- The signals a policy may send, by name; the C core maps them to numbers.
local SIGNALS = { TERM = true, INT = true, QUIT = true, HUP = true, USR1 = true,
  USR2 = true, KILL = true, WINCH = true, CONT = true, STOP = true }

local function signal_name(sig)
  if type(sig) ~= "string" then return nil end
  sig = sig:upper():gsub("^SIG", "")
  return SIGNALS[sig] and sig or nil
end
-- "TERM" for "TERM", "SIGTERM", "term"; nil for what is not a signal a
-- policy may send (config.lua checks a policy's `signal` option with it).
Gen.signal_name = signal_name

-- Sends SIG ("TERM", "SIGTERM", ...) to the main process.
function Gen:signal(sig)
  local name = signal_name(sig)
  if not name then return nil, "unknown signal " .. text(sig) end
  if self.exited then return nil, "generation has exited" end
  return self.rt.core.signal(self.id, name, false)
end

-- SIGKILL to the whole process group: the app and anything it forked.
function Gen:kill()
  if self.exited then return true end
  return self.rt.core.signal(self.id, "KILL", true)
end

-- TERM, then KILL after GRACE seconds; returns once the process is gone.
function Gen:stop(grace)
  if self.exited then return true end
  if grace ~= nil and type(grace) ~= "number" then error("stop: grace must be a number of seconds", 3) end
  if not self.draining then self.state = "draining" end
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
  local resume = signal_name(opts.resume or "USR2")
  if not resume then error("checkpoint: resume must be a signal name", 3) end
  local timeout = opts.timeout or 10
  if type(timeout) ~= "number" then error("checkpoint: timeout must be a number of seconds", 3) end
  local name = rt:state_name()
  local before = self.stored[name] or 0
  local ok, err = self:signal(opts.signal or "USR1")
  if not ok then return false, ("generation %d: cannot ask for its state: %s"):format(self.id, text(err)) end
  sandbox.critical(function()
    self.resume_signal = resume
    if rt.current then table.insert(rt.current.checkpointed, self) end
  end)
  local deadline = rt:now() + timeout
  while (self.stored[name] or 0) == before and not self.exited do
    local left = deadline - rt:now()
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

-- Seconds after its drain signal when a generation that still listens is
-- named in the log and its drain's event, as one that may not drain on it.
local HINT_SECONDS = 1

-- The options of a drain, read once (in the caller's budget) into plain
-- values the drain task can use without running any policy code.
local function drain_options(opts, default_deadline, default_signal)
  local function seconds(key, default)
    local v = opts[key]
    if v == nil or v == false then return default end
    if type(v) ~= "number" or v < 0 then error(("drain: %s must be a number of seconds"):format(key), 4) end
    return v
  end
  local done = opts.done
  if done ~= nil and type(done) ~= "function" then error("drain: done must be a function", 4) end
  local signal = signal_name(opts.signal or default_signal)
  if not signal then error("drain: unknown signal " .. text(opts.signal), 4) end
  return { signal = signal, deadline = seconds("deadline", default_deadline),
    poll = seconds("poll", 0.5), gradual = seconds("gradual", 0), done = done,
    quiet = seconds("quiet", 0) }
end

-- Seconds a silent drain waits after the weight went to 0 before it may
-- call the generation idle: handshakes chosen before then end meanwhile.
local HANDSHAKE_GRACE = 0.5

-- Asks the generation to finish its work and exit, in the background.
-- Returns at once. OPTS:
--   signal    sent first (default: the policy's `signal` option, else "TERM")
--   deadline  seconds until what is left is killed (default drain_timeout)
--   done      function(gen) -> true once it is idle: the drain ends early
--             (its process group is killed) instead of waiting out the
--             deadline; polled every `poll` seconds (default 0.5), less
--             often while many connections remain (one poll a 100
--             connections, up to 10 times `poll`)
--   gradual   seconds of gradual drain first: the generation keeps serving
--             while apps using libbaton (baton_drain_progress) shed
--             connections with a probability rising from 0 to 1; the
--             signal is sent at the end of it
--   quiet     on a steered listener (docs/steering.md): seconds the
--             generation, its weight 0 and no signal sent yet, may take to
--             hold no connection; the signal goes once the kernel shows it
--             none, or when they are up (default 0: at once). Its weight
--             goes to 0 when the drain starts, whatever this says
function Gen:drain(opts)
  if self.draining or self.exited then return end
  local rt = self.rt
  local o = drain_options(opts or {}, rt.cfg.drain_timeout, rt:drain_signal())
  -- Marked draining and its drain started together: a stop in between
  -- would leave it "draining" with nobody draining it.
  sandbox.critical(function() self:start_drain(o) end)
end

-- A drain's plan, as plain data: what a supervisor that takes over (a new
-- image, or a new `baton run` after a death) needs to carry it on. DONE is
-- only whether the drain had an idle test: a policy's function cannot
-- cross, so a resumed drain uses the built-in one (no connection left).
local function drain_plan(o)
  return { signal = o.signal, deadline = o.deadline, poll = o.poll, gradual = o.gradual,
    done = o.done ~= nil }
end

-- Carries on a drain that began under the supervisor before (PLAN from
-- drain_plan, STARTED its start on the monotonic clock): what was sent is
-- not sent again, and it ends at the deadline it had.
function Gen:resume_drain(plan, started)
  local rt = self.rt
  local o = { signal = plan.signal or "TERM", deadline = tonumber(plan.deadline) or rt.cfg.drain_timeout,
    poll = tonumber(plan.poll) or 0.5, gradual = 0, resumed = true }
  if plan.done then o.done = require("baton.steps").no_connections() end
  local left_of_gradual = (tonumber(plan.gradual) or 0) - (rt:now() - started)
  o.signal_at = left_of_gradual > 0 and left_of_gradual or nil
  o.deadline = math.max(0, o.deadline - math.max(0, rt:now() - started - (tonumber(plan.gradual) or 0)))
  self:start_drain(o, started)
  self.drain_plan = plan -- as it began: a second takeover reckons from the same start
end

function Gen:start_drain(o, started)
  local rt = self.rt
  self.draining = true
  self.drain_started = started or rt:now()
  self.drain_plan = drain_plan(o)
  self.state = "draining"
  if o.resumed then
    rt.core.log("info", ("generation %d: its drain carries on (%.1fs to its deadline)"):format(self.id,
      o.deadline + (o.signal_at or 0)))
  else
    rt.core.log("info", ("generation %d draining (SIG%s%s, deadline %gs)"):format(self.id, o.signal,
      o.gradual > 0 and (" after a gradual " .. o.gradual .. "s") or "", o.deadline))
  end
  if self.share and self.share > 0 then self:set_weight(0) end
  rt:task("drain of generation " .. self.id, function()
    if (o.quiet or 0) > 0 and self.share and not o.resumed then
      -- A silent drain: no new connection comes (weight 0); the clients
      -- close or rotate theirs, and the signal finds nothing to cut.
      local ends, quiet = rt:now() + o.quiet, false
      -- A connection's member is chosen at its SYN: one chosen before the
      -- weight went to 0 is in no queue until its handshake ends, and
      -- would be stranded if the app stopped accepting before then.
      local settled = rt:now() + math.min(HANDSHAKE_GRACE, o.quiet)
      while not self.exited and rt:now() < ends do
        -- Nothing open, nothing waiting in its members' accept queues.
        local _, queued = rt.core.steer(self.id)
        if rt:now() >= settled and self:figure("connections") == 0 and queued == 0 then
          quiet = true
          break
        end
        self:wait_exit(math.min(0.05, math.max(0, ends - rt:now())))
      end
      self.quiet_end = quiet and "idle" or "quiet timeout"
      rt.core.log("info", ("generation %d: %s after %.2fs of quiet; SIG%s now"):format(self.id,
        quiet and "no connection left" or "connections still open", rt:now() - self.drain_started, o.signal))
    end
    if o.signal_at then -- resumed within its gradual window: the signal is still to come
      self:wait_exit(o.signal_at)
      o.resumed = false
    end
    if o.gradual > 0 then
      rt.core.drain_window(self.id, o.gradual)
      rt.core.log("info", ("generation %d drains gradually for %gs"):format(self.id, o.gradual))
      self:wait_exit(o.gradual)
    end
    local ok, err = true, nil
    if not o.resumed then ok, err = self:signal(o.signal) end
    if not ok and not self.exited then
      rt.core.log("warn", ("generation %d: drain signal failed: %s"):format(self.id, text(err)))
    end
    local ends, how = rt:now() + o.deadline, "ended by its exit"
    -- An app that still holds the service's listeners a second after its
    -- signal may not drain on it (nginx drains on QUIT, lighttpd on INT,
    -- uwsgi takes TERM as a reload): it would serve on until the deadline.
    local hint_at, hint = not o.resumed and rt:now() + HINT_SECONDS or nil, nil
    local wait = o.poll
    while not self.exited do
      local left = ends - rt:now()
      if hint_at and rt:now() >= hint_at then
        hint_at = nil
        local listening = rt:figures(self.id).listening or 0
        if listening > 0 then
          hint = ("still listening %gs after SIG%s: does it drain on %s? (nginx drains on QUIT, " ..
            "lighttpd on INT, uwsgi reloads on TERM: set the policy's `signal` option)")
            :format(HINT_SECONDS, o.signal, o.signal)
          rt.core.log("warn", ("generation %d (pid %d) is %s"):format(self.id, self.pid, hint))
        end
      end
      if left <= 0 then
        rt.core.log("warn", ("generation %d still running at its drain deadline (%gs): killing it")
          :format(self.id, o.deadline))
        how = ("killed at its deadline (%gs)"):format(o.deadline)
        self.ended_as = self.ended_as or "killed at the drain deadline"
        self:kill()
        self:wait_exit(10)
        break
      end
      local step = o.done and math.min(wait, left) or left
      if hint_at then step = math.max(0, math.min(step, hint_at - rt:now())) end
      self:wait_exit(step)
      if not self.exited and o.done then
        local called, idle = rt:call_hook("drain done", o.done, self.handle)
        -- Far from done, polls come less often: one poll a POLL_PER
        -- connections still held (as the check read them), up to
        -- POLL_BACKOFF times `poll`; as they near zero, every `poll`.
        local f = rt.figure_cache.at == rt.clock and rt.figure_cache.by[self.id]
        local held = f and tonumber(f.connections) or 0
        wait = o.poll * math.min(POLL_BACKOFF, math.max(1, held / POLL_PER))
        if called and idle then
          -- Named for what ended it: "idle" only when the kernel shows no
          -- connection left; a `done` test of the policy's own may end a
          -- drain with connections open, and the history says so.
          local open = rt:figures(self.id).connections
          if open == 0 then
            rt.core.log("info", ("generation %d is idle: ending its drain early"):format(self.id))
            how = "ended early: idle (its done test passed, no connection left)"
            self.ended_as = self.ended_as or "drained (idle)"
          else
            local conns = open and ("%d connection%s left"):format(open, open == 1 and "" or "s")
              or "its connections unknown"
            rt.core.log("info", ("generation %d: its drain's done test passed (%s): ending its drain early")
              :format(self.id, conns))
            how = ("ended early: its done test passed with %s"):format(conns)
            self.ended_as = self.ended_as or ("drained (done test passed with %s)"):format(conns)
          end
          self:kill()
          self:wait_exit(10)
        end
      end
    end
    local took = rt:now() - self.drain_started
    rt:observe("baton.drain_seconds", took)
    rt.events:add{ time = self.drain_started, kind = "drain", generation = self.id,
      ok = self.exited, reason = ("%s (%s)%s%s"):format(how, self:exit_reason(), hint and ("; it was " .. hint) or "",
        self.quiet_end and ("; quiet: " .. self.quiet_end) or ""), duration = took }
    rt.core.log("info", ("generation %d drained in %.3fs (%s)"):format(self.id, took, self:exit_reason()))
  end)
end

-- Sets the weight without checks (the runtime's own calls).
function Gen:set_weight(pct)
  local ok, err = self.rt.core.steer(self.id, pct)
  if ok then self.share = pct end
  return ok, err
end

-- The generation's share of new connections on the steered listeners, PCT
-- from 0 to 100 (docs/steering.md): the kernel picks each new connection's
-- generation with probability weight / sum of the live generations'
-- weights. Without PCT, returns the weight. Returns the weight, or nil and
-- why (no steered listener, an exited generation).
function Gen:weight(pct)
  if pct == nil then return self.share end
  if type(pct) ~= "number" or pct ~= pct or pct < 0 or pct > 100 then
    error("weight: a number from 0 to 100", 3)
  end
  if self.share == nil then return nil, "the service has no steered listener" end
  if self.exited then return nil, ("generation %d has exited"):format(self.id) end
  local ok, err = self:set_weight(pct)
  if not ok then return nil, err end
  return pct
end

-- What a policy may call on a handle: each method, taking the handle.
for _, name in ipairs({ "alive", "exit_reason", "expand", "probe_once", "wait_ready", "wait_exit",
  "signal", "kill", "stop", "checkpoint", "drain", "weight" }) do
  local fn = Gen[name]
  methods[name] = function(h, ...)
    local g = Gen.of(h)
    if not g then error(("gen:%s() needs a generation (call it with ':')"):format(name), 2) end
    return fn(g, ...)
  end
end

return Gen
