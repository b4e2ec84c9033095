-- The runtime's carried state: what a new supervisor image (baton upgrade)
-- or a new `baton run` after a death (adoption) takes over.
local testkit = require("baton.testkit")

-- A second simulated supervisor, its clock at the first one's, taking over
-- from CARRY as HOW.
local function successor(sim, carry, how, opts)
  local next = testkit.new(opts or { config = { drain_timeout = 10 } })
  next.t = sim.t
  next.next_id = sim.next_id
  next:event("start", carry, how)
  next:advance(0)
  return next
end

describe("taking over", function()
  it("carries the serving generation, the history and a drain in progress", function()
    local sim = testkit.started({ config = { drain_timeout = 10 } })
    sim:restart()
    sim:ready(2)
    assert.equal(2, sim:active())
    sim:advance(3) -- generation 1 has drained for 3 of its 10 seconds
    local carry = sim.rt:query("carry", sim.t)
    assert.equal(2, carry.active)
    assert.equal(2, #carry.generations)
    local next = successor(sim, carry, "upgrade")
    assert.equal(2, next:active())
    assert.is_true(next.rt.gens[1].draining)
    assert.is_false(next:signalled(1, "TERM")) -- already sent by the image before
    next:advance(6.9)
    assert.is_nil(next.rt.gens[1].exited)
    assert.is_false(next:signalled(1, "KILL"))
    next:advance(0.2) -- its deadline, as it was: 10 s after the drain began
    assert.is_true(next:signalled(1, "KILL"))
    local kinds = {}
    for _, e in ipairs(next.rt.events:last()) do kinds[#kinds + 1] = e.kind end
    assert.same({ "start", "restart", "upgrade" }, kinds)
    assert.is_true(next:logged("upgraded: this image took over"))
  end)

  it("records an upgrade that came back to the old image", function()
    local sim = testkit.started()
    local next = successor(sim, sim.rt:query("carry", sim.t), "upgrade failed: the new image refused")
    local last = next.rt.events:latest("upgrade")
    assert.is_false(last.ok)
    assert.equal(1, next:active())
  end)

  it("drains a generation whose restart was cut short, and marks adopted ones", function()
    local sim = testkit.started()
    sim:restart() -- generation 2 starts; the supervisor dies before it is ready
    local next = successor(sim, sim.rt:query("carry", sim.t), "adoption")
    assert.equal(1, next:active())
    assert.is_true(next.rt.gens[2].draining)
    assert.is_number(next.rt.gens[1].adopted_at)
    next:exit(1, -1, 0)
    assert.matches("exit status unknown", next.rt.exited[1].ended)
  end)

  it("the copy on disk: its events apart, put back as a reader of the file does", function()
    local sim = testkit.started({ config = { drain_timeout = 10 } })
    local head = sim.rt:query("carry_file", sim.t)
    assert.is_nil(head.events)                       -- not rewritten with each change
    local seen = sim.rt:query("events_since", sim.t, 0)
    assert.equal(1, seen.first)
    sim:restart()
    sim:ready(2)
    local new = sim.rt:query("events_since", sim.t, seen.total) -- only what came since
    assert.equal(seen.total + 1, new.first)
    assert.same({ "restart" }, { new.events[1].kind })
    head = sim.rt:query("carry_file", sim.t)
    head.events, head.events_not_kept = {}, 0
    for _, e in ipairs(seen.events) do head.events[#head.events + 1] = e end
    for _, e in ipairs(new.events) do head.events[#head.events + 1] = e end
    local next = successor(sim, head, "adoption")
    local kinds = {}
    for _, e in ipairs(next.rt.events:last()) do kinds[#kinds + 1] = e.kind end
    assert.same({ "start", "restart", "adoption" }, kinds)
    assert.equal(2, next:active())
  end)

  it("starts afresh when nothing it carried serves any more", function()
    local sim = testkit.started()
    local carry = sim.rt:query("carry", sim.t)
    carry.generations, carry.active = {}, 0
    local next = successor(sim, carry, "adoption")
    assert.equal(1, #next.spawned)
  end)

  it("records a refused upgrade and serves on", function()
    local sim = testkit.started()
    local req = {}
    sim:event("upgrade", req, 0, "the new binary exited at once (exit code 1)")
    sim:advance(0)
    assert.equal("the new binary exited at once (exit code 1)", sim.rt.events:latest("upgrade").reason)
    assert.equal(1, sim:active())
    local req2 = {}
    sim:event("upgrade", req2, 1)
    sim:advance(0)
    assert.is_false(req2.ok)
    assert.is_table(sim.carried)
    assert.equal(1, sim.carried.active)
  end)
end)
