-- baton.steps.no_connections, read by read: when a drain may end without
-- racing an accept.
local steps = require("baton.steps")

-- A generation as the predicate sees it: figures set per read, signals
-- recorded.
local function fake(figures)
  local g = { id = 1, read = 0, exited = false, stats = {}, sent = {} }
  for k, v in pairs(figures) do g[k] = v end
  function g:signal(name) self.sent[#self.sent + 1] = name return true end
  return g
end

local function next_read(g, figures)
  g.read = g.read + 1
  for k, v in pairs(figures or {}) do g[k] = v end
end

describe("steps.no_connections", function()
  it("ends only on a read after one that showed no listener", function()
    local done = steps.no_connections()
    local g = fake{ listening = 0, connections = 0, processes = 1 }
    next_read(g)
    assert.is_false(done(g))
    next_read(g)
    assert.is_true(done(g))
    assert.same({}, g.sent)
  end)

  it("stops an app that keeps its listener, and ends once a read wholly while stopped shows nothing", function()
    local done = steps.no_connections()
    local g = fake{ listening = 1, connections = 0, processes = 1, stopped = false }
    next_read(g)
    assert.is_false(done(g)) -- SIGSTOP sent
    assert.same({ "STOP" }, g.sent)
    next_read(g) -- not stopped yet as this read ends
    assert.is_false(done(g))
    next_read(g, { stopped = true }) -- the first read that shows it stopped: it may have accepted before
    assert.is_false(done(g))
    next_read(g) -- wholly while stopped, and no connection
    assert.is_true(done(g))
    assert.same({ "STOP" }, g.sent)
  end)

  it("lets a stopped app go on when it turns out to hold a connection", function()
    local done = steps.no_connections()
    local g = fake{ listening = 1, connections = 0, processes = 1, stopped = false }
    next_read(g)
    assert.is_false(done(g))
    next_read(g, { stopped = true, connections = 1 }) -- it accepted one before it stopped
    assert.is_false(done(g))
    assert.same({ "STOP", "CONT" }, g.sent)
  end)

  it("does not stop an app of several processes that keeps its listener", function()
    local done = steps.no_connections()
    local g = fake{ listening = 1, connections = 0, processes = 3 }
    for _ = 1, 5 do
      next_read(g)
      assert.is_false(done(g))
    end
    assert.same({}, g.sent)
  end)
end)
