-- The policy sandbox: what policy code can reach, and the runtime's rules
-- whatever a policy returns or raises. (The budget itself lives in C: the
-- end-to-end tests hostile_policy.sh and sandbox_attacks.sh run it for real.)
local config = require("baton.config")
local runtime = require("baton.runtime")
local sandbox = require("baton.sandbox")
local testkit = require("baton.testkit")

local function policy_src(src)
  return sandbox.load(src, "=test policy", "test policy")
end

describe("what a policy can reach", function()
  it("requires only baton.steps, baton.state and the built-in policies", function()
    for _, mod in ipairs({ "baton.core", "baton.runtime", "baton.config", "baton.app",
                           "baton.testkit", "baton.sandbox", "baton.sched", "baton.x", "os", "ffi", "jit" }) do
      local v, err = policy_src(("return require(%q)"):format(mod))
      assert.is_nil(v, mod)
      assert.matches("may require only baton.steps, baton.state and baton.policies.NAME", err)
    end
    assert.is_table(policy_src('return require("baton.steps")'))
    assert.is_table(policy_src('return require("baton.policies.graceful")'))
  end)

  it("never reads a module from package.path", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. "/baton") == 0)
    local f = assert(io.open(dir .. "/baton/x.lua", "w"))
    f:write("error('loaded from package.path')\n")
    f:close()
    local saved = package.path
    package.path = dir .. "/?.lua;" .. saved
    local v, err = policy_src('return require("baton.x")')
    package.path = saved
    os.execute("rm -rf " .. dir)
    assert.is_nil(v)
    assert.matches("may require only", err)
  end)

  it("has no escape hatches", function()
    local names = policy_src([[
      local out = {}
      for _, k in ipairs({ "io", "load", "loadstring", "loadfile", "dofile", "require_", "module",
        "coroutine", "debug", "collectgarbage", "newproxy", "setfenv", "getfenv", "jit", "package" }) do
        if _G[k] ~= nil then out[#out + 1] = k end
      end
      if string.dump then out[#out + 1] = "string.dump" end
      if os.execute or os.exit or os.remove then out[#out + 1] = "os" end
      return out
    ]])
    assert.same({}, names)
  end)

  it("gives each policy its own string, table and math, and no string metatable", function()
    local p = policy_src([[
      string.format = function() return "poisoned" end
      table.concat = nil
      math.floor = nil
      return { mt = getmetatable(""), fmt = ("%d"):format(7) }
    ]])
    assert.is_nil(p.mt)
    assert.equal("7", p.fmt) -- methods on strings are the real library's
    assert.equal("x 1", ("%s %d"):format("x", 1))
    assert.is_function(table.concat)
    assert.is_function(math.floor)
  end)

  it("loads a fresh instance of each module for each policy", function()
    local a = policy_src([[
      local steps = require("baton.steps")
      steps.ready_new = function() error("poisoned") end
      require("baton.policies.default").restart = function() error("poisoned") end
      return { steps = steps, same = require("baton.steps") == steps }
    ]])
    assert.is_true(a.same) -- within one policy, one instance
    local b = policy_src('return require("baton.steps")')
    assert.are_not.equal(a.steps.ready_new, b.ready_new)
    local default = assert(config.load_policy("default"))
    local sim = testkit.started{ policy = default }
    local r = sim:restart()
    sim:ready(2)
    assert.is_true(r.ok, r.msg)
  end)

  it("refuses service files and policies that are not plain data", function()
    local p, err = config.load_policy(setmetatable({ restart = function() end }, { __index = {} }))
    assert.is_nil(p)
    assert.matches("metatable: plain data only", err)
    p, err = config.load_policy({ "graceful", deadline = setmetatable({}, {}) })
    assert.is_nil(p)
    assert.matches("metatable", err)
  end)

  it("turns any value into text without running its code", function()
    local evil = setmetatable({}, { __tostring = function() error("ran") end,
      __concat = function() error("ran") end })
    assert.equal("a table", sandbox.text(evil))
    assert.equal("a function", sandbox.text(print))
    assert.equal("3", sandbox.text(3))
    assert.equal("x", sandbox.text("x"))
  end)
end)

describe("the runtime, whatever a policy returns or raises", function()
  local function sim_with(restart)
    return testkit.started{ policy = { restart = restart } }
  end

  it("a table as the reason is an ordinary rollback; the lock is released", function()
    local sim = sim_with(function() return nil, {} end)
    local r = sim:restart()
    assert.is_false(r.ok)
    assert.matches("rolled back: the policy's reason is a table, not a string", r.msg)
    local r2 = sim:restart()
    assert.is_true(r2.done)
    assert.equal(1, sim:active())
  end)

  it("an error object with a __tostring is named, never converted", function()
    local sim = sim_with(function()
      error(setmetatable({}, { __tostring = function() error("ran its code") end }))
    end)
    local r = sim:restart()
    assert.is_false(r.ok)
    assert.matches("raised an error object of type table, not a string", r.msg)
  end)

  it("after any policy failure, a crashed generation is still replaced", function()
    local calls = 0
    local sim = testkit.started{ policy = {
      restart = function() return nil, setmetatable({}, { __concat = function() error("x") end }) end,
      died = function(svc)
        calls = calls + 1
        local steps = require("baton.steps")
        local new, why = steps.ready_new(svc)
        if not new then return nil, why end
        svc:promote(new)
        return new
      end,
    } }
    assert.is_false(sim:restart().ok)
    sim:exit(1, 1)
    sim:ready(2)
    assert.equal(1, calls)
    assert.equal(2, sim:active())
  end)

  it("promote is the commit point: an error after it still took over", function()
    local sim = sim_with(function(svc, old)
      local steps = require("baton.steps")
      local new = steps.ready_new(svc)
      svc:promote(new)
      old:drain()
      error("after the commit")
    end)
    local r = sim:restart()
    sim:ready(2)
    assert.is_true(r.ok)
    assert.matches("generation 2 took over from generation 1 %(the policy failed after promoting it", r.msg)
  end)

  it("any other return value is ignored: no promote, no take-over", function()
    local sim = sim_with(function(svc) svc:spawn() return "done!" end)
    local r = sim:restart()
    assert.is_false(r.ok)
    assert.matches("the policy did not promote a new generation", r.msg)
  end)

  it("hands a policy read-only handles, never the runtime's records", function()
    local seen
    local sim = sim_with(function(svc, old)
      seen = { pcall(function() old.pid = 1 end), pcall(function() svc.active = old end),
        getmetatable(old), getmetatable(svc) }
      rawset(svc, "active", "mine") -- the policy's own view only
      rawset(old, "alive", function() error("never called by the runtime") end)
      return nil, "tampered"
    end)
    local r = sim:restart()
    assert.is_false(seen[1])
    assert.is_false(seen[2])
    assert.equal("baton generation", seen[3])
    assert.equal("baton service", seen[4])
    assert.matches("rolled back: tampered", r.msg)
    assert.equal(1, sim:active())
    sim:exit(1, 1) -- the serving generation crashes: recovery runs on the runtime's records
    sim:advance(0.1)
    assert.same({ 1, 2 }, sim.spawned) -- generation 2 replaces it
  end)

  it("reads drain options once, in the policy's own budget", function()
    local reads = 0
    local sim = sim_with(function(svc, old)
      local steps = require("baton.steps")
      local new = steps.ready_new(svc)
      svc:promote(new)
      old:drain(setmetatable({}, { __index = function(_, k)
        reads = reads + 1
        if k == "deadline" then return 3 end
      end }))
      return new
    end)
    sim:restart()
    sim:ready(2)
    local during = reads
    sim:advance(3.1)
    assert.is_true(sim:signalled(1, "KILL"))
    assert.equal(during, reads) -- the drain task never read them again
  end)
end)

describe("the boundary", function()
  it("the test kit's fake core offers exactly runtime.CORE", function()
    local sim = testkit.new()
    local names, want = {}, {}
    for k in pairs(sim.core) do names[#names + 1] = k end
    for k in pairs(runtime.CORE) do want[#want + 1] = k end
    table.sort(names)
    table.sort(want)
    assert.same(want, names)
  end)

  it("runtime.new refuses a core with a function more or less", function()
    local sim = testkit.new()
    local core = {}
    for k, v in pairs(sim.core) do core[k] = v end
    core.state_read = nil
    assert.has_error(function() runtime.new(core, { name = "x" }, {}) end,
      "the core has no function 'state_read'")
    core.state_read, core.extra = sim.core.state_read, function() end
    assert.has_error(function() runtime.new(core, { name = "x" }, {}) end,
      "the core offers 'extra', which is not in baton.runtime's CORE")
  end)
end)

describe("sizes the loader bounds", function()
  it("refuses a policy file over 1 MiB before reading it", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write("return {}\n", ("-- padding\n"):rep(110000))
    f:close()
    local p, err = config.load_policy(path)
    os.remove(path)
    assert.is_nil(p)
    assert.matches("over the 1048576 a service file or policy may hold", err)
  end)

  it("refuses policy data of more than 100,000 values", function()
    local big = {}
    for i = 1, 100001 do big[i] = i end
    local p, err = config.load_policy({ restart = function() end, defaults = { big = big } })
    assert.is_nil(p)
    assert.matches("more than 100000 values", err)
  end)
end)
