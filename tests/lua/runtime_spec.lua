-- The runtime's rules, whatever the policy: one restart at a time, rollback
-- drains what a failed restart spawned, errors are contained. Driven through
-- baton.testkit, as a user would test a policy.
local testkit = require("baton.testkit")

local function up(opts)
  local sim = testkit.started(opts)
  assert.equal(1, sim:active())
  return sim
end

describe("default policy through the runtime", function()
  it("starts, restarts, promotes the new one and drains the old", function()
    local sim = up()
    local r = sim:restart()
    assert.same({ 1, 2 }, sim.spawned)
    sim:ready(2)
    assert.equal(2, sim:active())
    assert.same({ id = 1, sig = "TERM", group = false }, sim.signals[1])
    assert.is_true(r.ok)
    assert.matches("generation 2 took over from generation 1", r.msg)
    sim:exit(1, 0)
    assert.is_true(sim:logged("generation 1 drained"))
  end)

  it("kills the old generation's group at the drain deadline", function()
    local sim = up()
    sim:restart()
    sim:ready(2)
    sim:advance(9.9)
    assert.equal(1, #sim.signals)
    sim:advance(0.2)
    assert.same({ id = 1, sig = "KILL", group = true }, sim.signals[2])
  end)

  it("rolls back when the new generation exits before it is ready", function()
    local sim = up()
    local r = sim:restart()
    sim:exit(2, 3)
    assert.is_false(r.ok)
    assert.matches("rolled back: generation 2 exited before it was ready %(exit code 3%)", r.msg)
    assert.equal(1, sim:active())
    assert.is_false(sim:signalled(1))
  end)

  it("takes a passing check as readiness when the app sends no READY=1", function()
    local sim = testkit.new{ options = { ready = { notify = false, http = "http://127.0.0.1:8080/" } } }
    sim:start()
    assert.equal(1, sim:active()) -- no READY=1 ever: the probe made it ready
    local r = sim:restart()
    assert.is_true(r.ok, r.msg)
    assert.equal(2, sim:active())
    assert.equal("took over", r.fields.outcome)
    assert.is_true(sim:logged("generation 2 is ready %(its readiness check passed"))
  end)

  it("probes a generation's own per_generation listener through {port:NAME}", function()
    local sim = testkit.new{ options = { ready = { notify = false, http = "http://127.0.0.1:{port:health}/" } } }
    sim.ports = function(id) return { health = 40000 + id } end
    sim:start()
    assert.equal(1, sim:active())
    assert.equal(40001, sim.probes[1].port)
    local r = sim:restart()
    assert.is_true(r.ok, r.msg)
    assert.equal(40002, sim.probes[#sim.probes].port)
  end)

  it("says why promote refused when the policy does not check", function()
    local sim = up{ policy = { restart = function(svc)
      local new = svc:spawn()
      svc:promote(new) -- not ready: refused, and the policy does not look
      return new
    end } }
    local r = sim:restart()
    assert.is_false(r.ok)
    assert.matches("promote refused: generation 2 is not ready %(no READY=1", r.msg)
    assert.equal("rolled back", r.fields.outcome)
    assert.equal(2, r.fields.new)
    assert.equal(1, r.fields.old)
  end)

  it("rolls back and drains the new one when it is not ready in time", function()
    local sim = up()
    local r = sim:restart()
    sim:advance(5.1)
    assert.same({ id = 2, sig = "TERM", group = false }, sim.signals[1])
    assert.is_false(r.ok)
    assert.matches("not ready within 5s", r.msg)
    assert.equal(1, sim:active())
  end)

  it("rolls back when the command cannot be spawned", function()
    local sim = up()
    sim.spawn_error = "command 'x': not found in PATH"
    local r = sim:restart()
    assert.is_false(r.ok)
    assert.matches("not found in PATH", r.msg)
    assert.equal(1, sim:active())
  end)

  it("runs restarts one at a time, in order, while old ones still drain", function()
    local sim = up()
    local r1, r2 = sim:restart(), sim:restart()
    assert.same({ 1, 2 }, sim.spawned) -- the second waits for the first
    sim:ready(2)
    assert.same({ 1, 2, 3 }, sim.spawned) -- generation 1 still drains meanwhile
    sim:ready(3)
    assert.equal(3, sim:active())
    assert.is_true(r1.ok and r2.ok)
    assert.is_true(sim:signalled(1, "TERM") and sim:signalled(2, "TERM"))
    sim:advance(10.1) -- each drain has its own deadline
    assert.is_true(sim:signalled(1, "KILL") and sim:signalled(2, "KILL"))
  end)

  it("forgets generations that exited and waits that timed out (1,000 restarts stay flat)", function()
    local sim = up()
    local function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end
    for id = 2, 201 do
      local r = sim:restart()
      sim:ready(id)
      sim:exit(id - 1, 0)
      assert.is_true(r.ok)
    end
    assert.equal(201, sim:active())
    assert.equal(1, count(sim.rt.gens))
    assert.equal(0, count(sim.rt.timers))
    assert.equal(0, count(sim.rt.waiters))
    assert.equal(0, count(sim.rt.hooks))
    assert.equal(0, count(sim.rt.finish))
    -- A probe that never answers times out; its waiting list goes with it.
    local done = false
    sim.rt:task("probe", function()
      sim.rt:wait("probe:never", 1)
      done = true
    end)
    sim:advance(1.1)
    assert.is_true(done)
    assert.equal(0, count(sim.rt.waiters))
  end)

  it("restarts a generation that died, with a growing backoff", function()
    local sim = up()
    sim:exit(1, 1) -- crash 1: restart at once
    assert.same({ 1, 2 }, sim.spawned)
    sim:ready(2)
    sim:exit(2, 1) -- crash 2: wait 1s
    assert.same({ 1, 2 }, sim.spawned)
    sim:advance(1.01)
    assert.same({ 1, 2, 3 }, sim.spawned)
    sim:ready(3)
    sim:exit(3, 1) -- crash 3: wait 2s
    sim:advance(1.5)
    assert.equal(3, #sim.spawned)
    sim:advance(0.6)
    assert.equal(4, #sim.spawned)
  end)

  it("stop drains everything and shuts down once all are gone", function()
    local sim = up()
    local s = sim:stop()
    assert.same({ id = 1, sig = "TERM", group = false }, sim.signals[1])
    assert.is_nil(sim.shutdown_code)
    sim:exit(1, 0)
    assert.equal(0, sim.shutdown_code)
    assert.is_true(s.ok)
    assert.is_false(sim:restart().ok)
  end)

  it("a failed first start shuts the supervisor down with code 1", function()
    local sim = testkit.new()
    sim:start()
    sim:exit(1, 2)
    assert.equal(1, sim.shutdown_code)
    assert.is_true(sim:logged("failed to start"))
  end)
end)

describe("policy errors are contained", function()
  it("an error in restart rolls back and keeps the old generation", function()
    local sim = up{ policy = {
      restart = function(svc)
        local g = svc:spawn()
        g:wait_ready(5)
        error("boom")
      end,
    } }
    local r = sim:restart()
    sim:ready(2)
    assert.same({ id = 2, sig = "TERM", group = false }, sim.signals[1]) -- drains, in the background
    assert.is_false(r.ok)
    assert.matches("policy error: .*boom", r.msg)
    assert.equal(1, sim:active())
    assert.equal(1, sim.rt.policy_errors)
  end)

  it("a restart that promotes nothing is a rollback", function()
    local sim = up{ policy = { restart = function(svc) svc:spawn() return true end } }
    local r = sim:restart()
    assert.is_false(r.ok)
    assert.matches("did not promote", r.msg)
    sim:advance(10.1) -- ignores TERM: killed at the drain deadline
    assert.same({ id = 2, sig = "KILL", group = true }, sim.signals[2])
  end)

  it("a hook that never finishes is abandoned at its timeout", function()
    local sim = up{ policy = { restart = function(svc) svc:sleep(1e9) end },
                    config = { policy_limits = { timeout = 3 } } }
    local r = sim:restart()
    sim:advance(2.9)
    assert.is_nil(r.done)
    sim:advance(0.2)
    assert.is_false(r.ok)
    assert.matches("did not finish within 3s", r.msg)
    sim:restart() -- the lock was released: the next restart runs
    local started = 0
    for _, l in ipairs(sim.logs) do if l:find("restart requested") then started = started + 1 end end
    assert.equal(2, started)
  end)
end)

describe("the supervisor's counters", function()
  it("are registered at 0 when it starts", function()
    local sim = testkit.new{}
    sim:start()
    for _, name in ipairs(require("baton.runtime").COUNTERS) do
      assert.equal(0, sim.own_stats[name], name)
    end
  end)

  it("list every counter the runtime counts", function()
    local listed = {}
    for _, name in ipairs(require("baton.runtime").COUNTERS) do listed[name] = true end
    for _, file in ipairs({ "runtime", "sched", "state_gate", "gen", "svc" }) do
      local f = assert(io.open("lua/baton/" .. file .. ".lua"))
      local src = f:read("*a")
      f:close()
      for name in src:gmatch(":count%(\"([^\"]+)\"") do
        assert.is_true(listed[name] == true, name .. " (lua/baton/" .. file .. ".lua) is not in runtime.COUNTERS")
      end
    end
  end)
end)

describe("a start that fails", function()
  it("lets no restart queued behind it spawn while the supervisor stops", function()
    local sim = testkit.new{}
    sim:start()              -- generation 1 never says READY=1
    local r = sim:restart()  -- asked for meanwhile: waits for the start
    sim:advance(6)           -- ready_timeout (5 s) passes: the start fails
    assert.same({ 1 }, sim.spawned)
    assert.is_true(r.done)
    assert.is_false(r.ok)
    assert.matches("the supervisor is stopping", r.msg, 1, true)
  end)
end)
