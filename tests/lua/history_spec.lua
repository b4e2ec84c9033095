-- The history ring, and what the runtime records in it (baton events).
local History = require("baton.history")
local testkit = require("baton.testkit")

describe("the history ring", function()
  it("keeps the newest events, oldest first, and counts what it dropped", function()
    local h = History.new(3)
    for i = 1, 5 do h:add{ time = i, kind = "restart", ok = i % 2 == 0, reason = "r" .. i } end
    local all, not_kept = h:last()
    assert.same({ 3, 4, 5 }, { all[1].time, all[2].time, all[3].time })
    assert.equal(2, not_kept)
    local two, older = h:last(2)
    assert.same({ 4, 5 }, { two[1].time, two[2].time })
    assert.equal(3, older)
    assert.equal(5, h:latest("restart").time)
    assert.is_nil(h:latest("crash"))
    assert.equal(0, all[1].generation) -- filled in
  end)

  it("gives the events after a number, as the copy on disk appends them", function()
    local h = History.new(3)
    local none, first = h:since(0)
    assert.same({}, none)
    assert.equal(1, first)
    for i = 1, 2 do h:add{ time = i, kind = "restart" } end
    local got, from = h:since(0)
    assert.same({ 1, 2 }, { got[1].time, got[2].time })
    assert.equal(1, from)
    for i = 3, 5 do h:add{ time = i, kind = "restart" } end
    assert.equal(5, h:total())
    got, from = h:since(2)       -- 3 to 5, all kept
    assert.same({ 3, 4, 5 }, { got[1].time, got[2].time, got[3].time })
    assert.equal(3, from)
    got, from = h:since(1)       -- 2 was dropped: from the oldest kept
    assert.equal(3, from)
    assert.equal(3, #got)
    got = h:since(5)
    assert.same({}, got)
  end)
end)

describe("what the runtime records", function()
  local function kinds(sim)
    local out = {}
    for _, e in ipairs((sim.rt.events:last())) do
      out[#out + 1] = e.kind .. (e.ok and "" or "!") .. ":" .. e.generation
    end
    return out
  end

  it("a restart, a rollback, a drain, a crash and its recovery, with reasons", function()
    local sim = testkit.started()
    sim:restart()
    sim:ready(2)
    sim:exit(1, 0)                 -- generation 1 drained
    local r = sim:restart()
    sim:exit(3, 3)                 -- generation 3 dies before it is ready
    assert.is_false(r.ok)
    sim:exit(2, -1, 9)             -- the serving generation crashes
    sim:ready(4)
    assert.same({ "start:1", "restart:2", "drain:1", "restart!:3", "crash!:2", "recovery:4" }, kinds(sim))
    local rolled = sim.rt.events:latest("restart")
    assert.matches("exited before it was ready %(exit code 3%)", rolled.reason)
    local view = sim.rt:query("view", sim.t)
    local ends = {}
    for _, g in ipairs(view.generations) do ends[g.id] = g.ended end
    assert.matches("^drained", ends[1])
    assert.matches("^crashed, killed by signal 9", ends[2])
    assert.matches("^rolled back", ends[3])
    assert.is_false(view.last_restart.ok)
  end)

  it("a drain killed at its deadline says so", function()
    local sim = testkit.started()
    sim:restart()
    sim:ready(2)
    sim:advance(10.1)              -- generation 1 ignores TERM
    sim:exit(1, -1, 9)
    local d = sim.rt.events:latest("drain")
    assert.matches("killed at its deadline %(10s%)", d.reason)
    local view = sim.rt:query("view", sim.t)
    assert.matches("^killed at the drain deadline", view.generations[1].ended)
  end)
end)

describe("a failed generation's last words", function()
  it("its last stderr lines are in the rollback's reason", function()
    local sim = testkit.started()
    sim.stderr[2] = { "loading config", "fatal: port 80: permission denied" }
    local r = sim:restart()
    sim:exit(2, 1)
    assert.is_false(r.ok)
    assert.matches("exited before it was ready %(exit code 1%); its last stderr: loading config | " ..
      "fatal: port 80: permission denied", r.msg)
  end)
end)

describe("what a service manager above is told (sd_notify)", function()
  it("READY=1 once the first generation serves, STATUS= after restarts, STOPPING=1", function()
    local sim = testkit.started()
    assert.matches("^READY=1\nSTATUS=generation 1 took over", sim.manager[1])
    sim:restart()
    sim:ready(2)
    assert.matches("^STATUS=generation 2 took over from generation 1", sim.manager[2])
    local r = sim:restart()
    sim:exit(3, 1)
    assert.is_false(r.ok)
    assert.matches("^STATUS=restart rolled back: generation 3 exited", sim.manager[3])
    sim:stop()
    assert.matches("^STOPPING=1\n", sim.manager[4])
  end)
end)
