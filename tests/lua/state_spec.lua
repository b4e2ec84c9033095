-- State handover in the runtime: the handover policy, migrations, refusals
-- (baton.testkit: a simulated supervisor, the real runtime and policy).
local testkit = require("baton.testkit")
local state = require("baton.state")

local function up(opts)
  local sim = testkit.started(opts)
  assert.equal(1, sim:active())
  return sim
end

describe("the handover policy", function()
  it("asks the old generation for its state before the new one starts", function()
    local sim = up{ policy = "handover" }
    local r = sim:restart()
    assert.is_true(sim:signalled(1, "USR1"))
    assert.equal(1, #sim.spawned) -- nothing started before the state is stored
    sim:store(1, "a 1\n", 1)
    assert.equal(2, #sim.spawned)
    assert.same({ mode = "stored", blob = "a 1\n", version = 1 }, sim.spawn_state[2])
    sim:ready(2)
    assert.is_true(r.ok)
    assert.equal(2, sim:active())
    assert.is_true(sim:signalled(1, "TERM"))
    assert.is_false(sim:signalled(1, "USR2"))
  end)

  it("rolls back and resumes the old generation when it stores nothing in time", function()
    local sim = up{ policy = "handover", options = { checkpoint_timeout = 2 } }
    local r = sim:restart()
    sim:advance(2.5)
    assert.is_false(r.ok)
    assert.matches("did not store its state within 2s", r.msg)
    assert.equal(1, #sim.spawned)
    assert.is_true(sim:signalled(1, "USR2"))
    assert.equal(1, sim:active())
  end)

  it("resumes the old generation when the new one is not ready", function()
    local sim = up{ policy = "handover", config = { ready_timeout = 3 } }
    local r = sim:restart()
    sim:store(1, "x", 1)
    sim:advance(3.5)
    assert.is_false(r.ok)
    assert.is_true(sim:signalled(1, "USR2"))
    assert.is_true(sim:signalled(2, "TERM"))
    assert.equal(1, sim:active())
  end)

  it("uses the signals its options name", function()
    local sim = up{ policy = "handover", options = { checkpoint = "HUP", resume = "CONT",
      checkpoint_timeout = 1 } }
    sim:restart()
    sim:advance(1.5)
    assert.is_true(sim:signalled(1, "HUP"))
    assert.is_true(sim:signalled(1, "CONT"))
  end)
end)

describe("state checks at spawn", function()
  local migrate_calls
  local function policy(migrate)
    local steps = require("baton.steps")
    return steps.standard{
      restart = function(svc, old)
        local new, err = steps.ready_new(svc)
        if not new then return nil, err end
        svc:promote(new)
        if old then old:drain() end
        return new
      end,
      migrate = migrate,
    }
  end

  before_each(function() migrate_calls = {} end)

  it("passes a blob of the expected schema as it is", function()
    local sim = up{ policy = policy(function() error("not called") end), config = { state = { version = 1 } } }
    sim:store(1, "data", 1)
    local r = sim:restart()
    sim:ready(2)
    assert.is_true(r.ok)
    assert.equal("stored", sim.spawn_state[2].mode)
  end)

  it("migrates a blob of another schema and passes the result", function()
    local sim = up{ policy = policy(function(_, blob, from, to)
      migrate_calls[#migrate_calls + 1] = { from, to }
      return blob:upper()
    end), config = { state = { version = 2 } } }
    sim:store(1, "data", 1)
    local r = sim:restart()
    sim:ready(2)
    assert.is_true(r.ok, r.msg)
    assert.same({ { 1, 2 } }, migrate_calls)
    assert.same({ mode = "staged", blob = "DATA", version = 2 }, sim.spawn_state[2])
    assert.is_true(sim:logged("state migrated from schema 1 to 2"))
  end)

  it("refuses a migration the hook refuses: nothing starts, the old one serves", function()
    local sim = up{ policy = policy(function() return nil, "counters from before 2024 are gone" end),
      config = { state = { version = 2 } } }
    sim:store(1, "data", 1)
    local r = sim:restart()
    assert.is_false(r.ok)
    assert.matches("migration from schema 1 to 2 refused: counters from before 2024 are gone", r.msg)
    assert.equal(1, #sim.spawned)
    assert.equal(1, sim:active())
  end)

  it("refuses a blob of another schema when there is no migrate hook", function()
    local sim = up{ policy = "default", config = { state = { version = 3 } } }
    sim:store(1, "data", 2)
    local r = sim:restart()
    assert.is_false(r.ok)
    assert.matches("schema 2, the service expects 3 %(state.version%), and the policy has no migrate hook", r.msg)
  end)

  it("refuses when the migrate hook errors or returns something else", function()
    local sim = up{ policy = policy(function() error("boom") end), config = { state = { version = 2 } } }
    sim:store(1, "data", 1)
    local r = sim:restart()
    assert.is_false(r.ok)
    assert.matches("the migrate hook failed: .*boom", r.msg)
    local sim2 = up{ policy = policy(function() return { 1 } end), config = { state = { version = 2 } } }
    sim2:store(1, "data", 1)
    r = sim2:restart()
    assert.matches("must return the new blob %(a string%)", r.msg)
  end)

  it("refuses a bad blob while a generation serves", function()
    local sim = up{ policy = "default" }
    sim:store_bad(1, "checksum mismatch (stored 1, computed 2)")
    local r = sim:restart()
    assert.is_false(r.ok)
    assert.matches("state refused: checksum mismatch", r.msg)
    assert.equal(1, #sim.spawned)
  end)

  it("starts without a bad blob when nothing serves", function()
    local sim = up{ policy = "default" }
    sim:store_bad(1, "truncated")
    sim:exit(1, 1)
    sim:advance(0.1)
    assert.equal(2, #sim.spawned)
    assert.equal("none", sim.spawn_state[2].mode)
    assert.is_true(sim:logged("nothing serves, so the new generation starts without it"))
  end)

  it("passes the handover policy's migrate option", function()
    local sim = up{ policy = "handover", options = { migrate = function(_, b) return b .. "!" end },
      config = { state = { version = 2 } } }
    local r = sim:restart()
    sim:store(1, "v1", 1)
    sim:ready(2)
    assert.is_true(r.ok, r.msg)
    assert.same({ mode = "staged", blob = "v1!", version = 2 }, sim.spawn_state[2])
  end)
end)

describe("baton.state helpers", function()
  it("chains string steps up and down", function()
    local m = state.steps{
      [1] = function(b) return b .. ",2" end,
      [2] = function(b) return b .. ",3" end,
      down = { [3] = function(b) return (b:gsub(",3$", "")) end },
    }
    assert.equal("1,2,3", m(nil, "1", 1, 3))
    assert.equal("1,2", m(nil, "1,2,3", 3, 2))
    local out, why = m(nil, "x", 3, 4)
    assert.is_nil(out)
    assert.equal("no migration step from schema 3 to 4", why)
  end)

  it("chains JSON steps and reports what it cannot decode", function()
    local m = state.json_steps{ [1] = function(doc) doc.ttl = 60; return doc end }
    local out = m(nil, '{"hits":5}', 1, 2)
    local doc = state.json().decode(out)
    assert.same({ hits = 5, ttl = 60 }, doc)
    local bad, why = m(nil, "{not json", 1, 2)
    assert.is_nil(bad)
    assert.matches("cannot decode the stored blob", why)
  end)

  it("passes a step's refusal on", function()
    local m = state.steps{ [1] = function() return nil, "too old" end }
    local out, why = m(nil, "x", 1, 2)
    assert.is_nil(out)
    assert.equal("step 1 -> 2: too old", why)
  end)
end)
