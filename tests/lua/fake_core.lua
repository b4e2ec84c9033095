-- A stand-in for baton.core with a simulated clock and simulated processes,
-- for specs of the runtime and policies: no fork, no sockets, no waiting.
--
--   local core = fake_core.new()
--   core:advance(5)            -- run timers due in the next 5 simulated seconds
--   core:ready(id) / core:exit(id, code, sig)   -- what a process would do
--   core.spawned, core.signals, core.replies, core.logs   -- what the runtime did

local _M = {}

function _M.new()
  local c = { t = 0, next_id = 0, next_timer = 0, timers = {}, spawned = {},
              signals = {}, replies = {}, logs = {}, states = {}, shutdown_code = nil,
              spawn_error = nil }

  function c.now() return c.t end
  function c.spawn()
    if c.spawn_error then return nil, c.spawn_error end
    c.next_id = c.next_id + 1
    c.spawned[#c.spawned + 1] = c.next_id
    return c.next_id, 1000 + c.next_id
  end
  function c.signal(id, sig, group)
    c.signals[#c.signals + 1] = { id = id, sig = sig, group = group }
    return true
  end
  function c.timer(s)
    c.next_timer = c.next_timer + 1
    c.timers[c.next_timer] = c.t + s
    return c.next_timer
  end
  function c.cancel(tid) c.timers[tid] = nil end
  function c.log(level, msg) c.logs[#c.logs + 1] = level .. ": " .. msg end
  function c.set_state(id, st) c.states[id] = st end
  function c.reply(req, ok, msg) c.replies[#c.replies + 1] = { req = req, ok = ok, msg = msg } end
  function c.shutdown(code) c.shutdown_code = code end

  function c:attach(rt) self.rt = rt end
  -- Runs every timer due within DT seconds, in time order.
  function c:advance(dt)
    local stop = self.t + dt
    while true do
      local best, at
      for tid, when in pairs(self.timers) do
        if when <= stop and (not at or when < at or (when == at and tid < best)) then best, at = tid, when end
      end
      if not best then break end
      self.timers[best] = nil
      self.t = math.max(self.t, at)
      self.rt:dispatch("timer", best)
    end
    self.t = stop
  end
  function c:ready(id) self.rt:dispatch("ready", id) end
  function c:exit(id, code, sig) self.rt:dispatch("exit", id, code or 0, sig or 0) end
  function c:logged(pattern)
    for _, l in ipairs(self.logs) do if l:find(pattern) then return true end end
    return false
  end
  return c
end

return _M
