-- baton.history: what happened, for `baton events` and `baton status`.
--
-- A bounded ring of events the runtime records as it decides: restarts
-- (taken over or rolled back, why, how long), the start, crashes and
-- recoveries, drains (how they ended, how long), reloads (applied or
-- refused, why), rollbacks asked for, the stop. Each event is
--   { time = monotonic seconds, kind, generation (0: none), ok, reason, duration? }
-- (the C core turns `time` into unix seconds when it answers). Past the
-- ring's size the oldest go, and `dropped` counts them.

local History = {}
History.__index = History

local SIZE = 256

function History.new(size)
  return setmetatable({ size = size or SIZE, first = 1, count = 0, dropped = 0, items = {} }, History)
end

function History:add(ev)
  ev.generation = ev.generation or 0
  ev.reason = ev.reason or ""
  ev.ok = ev.ok and true or false
  if self.count == self.size then
    self.items[self.first] = ev
    self.first = self.first % self.size + 1
    self.dropped = self.dropped + 1
  else
    self.count = self.count + 1
    self.items[(self.first + self.count - 2) % self.size + 1] = ev
  end
end

-- The newest N events (all of them when N is nil), oldest first, and how
-- many older ones are not in that list.
function History:last(n)
  n = math.min(n or self.count, self.count)
  local out = {}
  for i = self.count - n + 1, self.count do
    out[#out + 1] = self.items[(self.first + i - 2) % self.size + 1]
  end
  return out, self.dropped + (self.count - n)
end

-- How many events were ever added: the newest one's sequence number (the
-- oldest kept is number dropped + 1).
function History:total()
  return self.count + self.dropped
end

-- The events after sequence number SEQ that are still kept, oldest first,
-- and the sequence number of the first of them: what the successor's copy
-- on disk lacks (the C core appends them to it, one line each).
function History:since(seq)
  local first = math.max(seq + 1, self.dropped + 1)
  local out = {}
  for s = first, self:total() do
    out[#out + 1] = self.items[(self.first + (s - self.dropped) - 2) % self.size + 1]
  end
  return out, first
end

-- The newest event of KIND, or nil.
function History:latest(kind)
  for i = self.count, 1, -1 do
    local ev = self.items[(self.first + i - 2) % self.size + 1]
    if ev.kind == kind then return ev end
  end
end

return History
