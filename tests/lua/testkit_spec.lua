-- The test kit itself: hooks run under the supervisor's budget (a looping
-- hook fails the spec instead of hanging busted), reloads are simulated
-- (bad ones refused, the running policy kept), and a start that failed
-- says why.
local testkit = require("baton.testkit")

local function looping(svc, old) -- luacheck: ignore 212
  while true do end
end

describe("the test kit's budget", function()
  it("stops a hook that loops, as the supervisor does", function()
    local sim = testkit.started{ policy = { restart = looping } }
    local r = sim:restart()
    assert.is_true(r.done)
    assert.is_false(r.ok)
    assert.matches("policy hook 'restart' exceeded its [a-z]+ budget and was stopped", r.msg)
    assert.equal(1, sim:active())
  end)

  it("counts its instructions", function()
    local sim = testkit.started{ config = { policy_limits = { instructions = 100000, slice_ms = 60000 } },
      policy = { restart = looping } }
    local r = sim:restart()
    assert.matches("exceeded its instruction budget", r.msg, 1, true)
  end)

  it("stops one that loops inside its own pcall", function()
    local sim = testkit.started{ policy = { restart = function()
      while true do pcall(function() while true do end end) end
    end } }
    local r = sim:restart()
    assert.is_false(r.ok)
    assert.matches("exceeded its [a-z]+ budget", r.msg)
  end)

  it("stops one over its time slice", function()
    local sim = testkit.started{ config = { policy_limits = { slice_ms = 5, instructions = 1e12 } },
      policy = { restart = looping } }
    local r = sim:restart()
    assert.matches("exceeded its time budget", r.msg, 1, true)
  end)

  it("refuses a policy whose top level loops", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("while true do end\n")
    f:close()
    local ok, err = pcall(testkit.new, { policy = path })
    os.remove(path)
    assert.is_false(ok)
    assert.matches("exceeded its [a-z]+ budget while loading", err)
  end)
end)

describe("the test kit's reload", function()
  local function file(src)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(src)
    f:close()
    return path
  end
  local A = [[
local default = require("baton.policies.default")
return { restart = function(svc, old) svc:log("info", "restart under A") return default.restart(svc, old) end }
]]

  it("refuses a policy that does not load, and keeps the running one", function()
    local path = file(A)
    local sim = testkit.started{ policy = path }
    local f = assert(io.open(path, "w"))
    f:write("return {\n  restart = function() end\n") -- no closing brace
    f:close()
    local r = sim:reload()
    assert.is_false(r.ok)
    assert.matches(path .. ":3:", r.msg, 1, true)
    assert.is_true(sim:logged("reload refused %(still running the previous one%)"))
    local rr = sim:restart(); sim:ready(2)
    assert.is_true(rr.ok)
    assert.is_true(sim:logged("restart under A"))
    os.remove(path)
  end)

  it("takes a policy that loads: the next restart runs under it", function()
    local sim = testkit.started{ policy = "graceful", options = { deadline = 5 } }
    local function b(svc)
      svc:log("info", "restart under B")
      return nil, "B says no"
    end
    local r = sim:reload{ policy = { restart = b } }
    assert.is_true(r.ok)
    local rr = sim:restart()
    assert.is_false(rr.ok)
    assert.matches("B says no", rr.msg, 1, true)
    assert.is_true(sim:logged("restart under B"))
  end)

  it("refuses an option the policy does not have", function()
    local sim = testkit.started{ policy = "graceful" }
    local r = sim:reload{ options = { deadlin = 3 } }
    assert.is_false(r.ok)
    assert.matches("has no option 'deadlin'", r.msg, 1, true)
  end)
end)

describe("testkit.started", function()
  it("says why the start failed", function()
    assert.has_error(function()
      testkit.started{ policy = { start = function() error("no database") end } }
    end)
    local ok, err = pcall(testkit.started, { policy = { start = function() error("no database") end } })
    assert.is_false(ok)
    assert.matches("testkit.started: the start failed: policy error: ", err, 1, true)
    assert.matches("no database", err, 1, true)
  end)
end)
