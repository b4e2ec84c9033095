-- Every built-in policy, in a simulated supervisor (baton.testkit).
local testkit = require("baton.testkit")

local up = testkit.started

describe("readiness checks", function()
  it("waits for READY=1 and then an HTTP probe of the generation's own port", function()
    local sim = up{ options = { ready = { timeout = 5, http = "http://127.0.0.1:{generation+9000}/health" } } }
    local healthy = false
    sim.probe = function(_, port, path)
      local ok = path == "/health" and (port == 9001 or (healthy and port == 9002))
      return true, ok and "status 200" or "status 503"
    end
    sim:advance(0.1) -- generation 1 passes its probe and serves
    assert.equal(1, sim:active())
    local r = sim:restart()
    sim:ready(2)
    sim:advance(1)
    assert.is_nil(r.done) -- READY=1 came, the probe still says 503
    healthy = true
    sim:advance(0.3)
    assert.is_true(r.ok)
    assert.equal(2, sim:active())
  end)

  it("rolls back when the probe never passes", function()
    local sim = testkit.new{ options = { ready = { timeout = 2, tcp = "127.0.0.1:{generation+9000}" } } }
    sim.probe = function(_, port)
      if port == 9001 then return true, "connected" end
      return false, "connection refused"
    end
    sim:start()
    sim:ready(1)
    assert.equal(1, sim:active())
    local r = sim:restart()
    sim:ready(2)
    sim:advance(2.5)
    assert.is_false(r.ok)
    assert.matches("failed its readiness check within 2s: tcp 127.0.0.1:9002: connection refused", r.msg)
    assert.equal(1, sim:active())
  end)

  it("refuses at once a tcp probe of the service's own listener", function()
    local sim = testkit.new{ config = { listen = { { name = "http", address = "tcp://0.0.0.0:8080" } } },
      options = { ready = { timeout = 20, notify = false, tcp = "127.0.0.1:8080" } } }
    sim:start()
    sim:advance(0.1) -- no waiting for the timeout: the probe cannot pass
    assert.is_nil(sim:active())
    assert.is_true(sim:logged("cannot be checked: tcp 127.0.0.1:8080: it is the service's own listener 'http'"))
    assert.equal(0, #sim.probes)
  end)

  it("runs a check of the policy's own", function()
    local calls = 0
    local function warm(g)
      if g.id == 1 then return true end
      calls = calls + 1
      return calls >= 3, "warming up"
    end
    local sim = up{ options = { ready = { check = warm } } }
    assert.equal(1, sim:active())
    local r = sim:restart()
    sim:ready(2)
    sim:advance(1)
    assert.is_true(r.ok)
    assert.equal(3, calls)
  end)
end)

describe("graceful", function()
  it("ends the old generation's drain once the kernel shows it no connection", function()
    local sim = up{ policy = "graceful", options = { deadline = 60 } }
    sim.figures[1] = { connections = 5 }
    sim:restart()
    sim:ready(2)
    assert.is_true(sim:signalled(1, "TERM"))
    sim:advance(3)
    assert.is_false(sim:signalled(1, "KILL")) -- still has connections
    sim.figures[1] = { connections = 0 }
    sim:advance(0.011) -- polled every 10 ms
    assert.is_true(sim:signalled(1, "KILL"))
    assert.is_true(sim:logged("generation 1 is idle: ending its drain early"))
  end)

  it("does not end a drain while the generation still holds a listener", function()
    local sim = up{ policy = "graceful" }
    sim.figures[1] = { connections = 0, listening = 1 } -- it may still accept
    sim:restart()
    sim:ready(2)
    sim:advance(1)
    assert.is_false(sim:signalled(1, "KILL"))
    sim.figures[1] = { connections = 0, listening = 0 } -- it closed its listener
    sim:advance(0.02)
    assert.is_true(sim:signalled(1, "KILL"))
  end)

  it("waits for the app's own idle gauge too, when it exports one", function()
    local sim = up{ policy = "graceful", options = { idle_metric = "http.connections" } }
    sim:set_stat("http.connections", 2, 1)
    sim:restart()
    sim:ready(2)
    sim:advance(1)
    assert.is_false(sim:signalled(1, "KILL")) -- no connection, but its gauge says 2
    sim:set_stat("http.connections", 0, 1)
    sim:advance(0.02)
    assert.is_true(sim:signalled(1, "KILL"))
  end)

  it("stops the oldest draining generation beyond max_draining", function()
    local sim = up{ policy = "graceful", options = { max_draining = 1 } }
    sim.figures[1] = { connections = 3, rss = 64 * 1048576 }
    sim.figures[2] = { connections = 2 }
    sim:restart(); sim:ready(2)           -- 1 drains
    assert.is_false(sim:signalled(1, "KILL"))
    sim:restart(); sim:ready(3)           -- 2 drains: 1 is stopped first
    assert.is_true(sim:signalled(1, "KILL"))
    assert.is_false(sim:signalled(2, "KILL"))
    assert.is_true(sim:logged("max_draining = 1: stopping generation 1 now %(3 connections, 64 MiB resident%)"))
  end)

  it("refuses an option it does not have", function()
    assert.has_error(function() testkit.new{ policy = "graceful", options = { deadlin = 3 } } end,
      "policy 'graceful' has no option 'deadlin', did you mean 'deadline'? (options: deadline, every, " ..
      "idle_metric, max_draining, " ..
      "max_memory, memory_interval, poll, quiet, ready, signal, start_limit, watch)")
  end)
end)

describe("the drain signal", function()
  for _, name in ipairs({ "default", "graceful", "immediate", "gradual", "bluegreen", "handover" }) do
    it(name .. " drains with its `signal` option", function()
      local sim = up{ policy = name, options = { signal = "QUIT" } }
      local r = sim:restart()
      if name == "handover" then sim:store(1, "state") end -- its final state, asked for first
      sim:ready(2)
      sim:advance(40) -- past any window
      assert.is_true(r.ok)
      assert.is_true(sim:signalled(1, "QUIT"))
      assert.is_false(sim:signalled(1, "TERM"))
    end)
  end

  it("drains a rolled back generation with it too", function()
    local sim = up{ policy = "default", options = { signal = "INT", ready = 2 } }
    local r = sim:restart()         -- generation 2 never says READY=1
    sim:advance(3)
    assert.is_false(r.ok)
    assert.is_true(sim:signalled(2, "INT"))
  end)

  it("refuses a name that is not a signal", function()
    assert.has_error(function() testkit.new{ policy = "graceful", options = { signal = "TERMINATE" } } end,
      "policy 'graceful': option 'signal': TERMINATE is not a signal a drain can send (TERM, INT, QUIT, HUP, " ..
      "USR1, USR2, WINCH)")
  end)

  it("names a generation that still listens a second after its signal", function()
    local sim = up{ policy = "default" }
    sim.figures[1] = { listening = 1, connections = 0 }
    sim:restart(); sim:ready(2)
    sim:advance(0.5)
    assert.is_false(sim:logged("does it drain on TERM"))
    sim:advance(1)
    assert.is_true(sim:logged("generation 1 %(pid %d+%) is still listening 1s after SIGTERM: does it drain on TERM%?"))
    sim:exit(1, 0)
    assert.matches("it was still listening 1s after SIGTERM", sim.rt.events:latest("drain").reason, 1, true)
  end)

  it("says nothing of one that stopped listening", function()
    local sim = up{ policy = "default" }
    sim.figures[1] = { listening = 0, connections = 2 }
    sim:restart(); sim:ready(2)
    sim:advance(2)
    assert.is_false(sim:logged("does it drain on"))
  end)
end)

describe("max_memory", function()
  local MiB = 1048576
  it("restarts once the serving generation stays over it, at most once per interval", function()
    local sim = up{ policy = "graceful", options = { max_memory = "100M", memory_interval = 60 } }
    sim.figures[1] = { rss = 150 * MiB }
    sim:advance(5)                      -- over once: not yet
    assert.same({ 1 }, sim.spawned)
    sim:advance(5)                      -- over twice in a row
    assert.same({ 1, 2 }, sim.spawned)
    assert.is_true(sim:logged("restart requested %(memory over 100 MiB %(generation 1: 150 MiB resident%)%)"))
    sim:ready(2)
    sim.figures[2] = { rss = 150 * MiB } -- the new one grows too
    sim:advance(30)
    assert.same({ 1, 2 }, sim.spawned)  -- within the interval: no second restart
    sim:advance(35)
    assert.same({ 1, 2, 3 }, sim.spawned)
    assert.equal("memory over 100 MiB (generation 2: 150 MiB resident)", sim.rt.events:latest("restart").cause)
  end)

  it("leaves a generation alone that dips under it", function()
    local sim = up{ options = { max_memory = 100 * MiB } }
    sim.figures[1] = { rss = 150 * MiB }
    sim:advance(5)
    sim.figures[1] = { rss = 50 * MiB }
    sim:advance(5)
    sim.figures[1] = { rss = 150 * MiB }
    sim:advance(5)
    assert.same({ 1 }, sim.spawned)
  end)

  it("refuses a size it cannot read", function()
    assert.has_error(function() testkit.new{ options = { max_memory = "lots" } } end,
      "policy 'default': option 'max_memory' must be a number of bytes or a size such as \"512M\", got lots")
  end)
end)

describe("start_limit", function()
  it("gives up after N crashes within T, until baton restart", function()
    local sim = up{ options = { start_limit = { burst = 3, interval = 60 } } }
    sim:exit(1, 1)                      -- crash 1: restarted at once
    assert.same({ 1, 2 }, sim.spawned)
    sim:ready(2)
    sim:exit(2, 1)                      -- crash 2: after the backoff
    sim:advance(2)
    assert.same({ 1, 2, 3 }, sim.spawned)
    sim:ready(3)
    sim:exit(3, 1)                      -- crash 3: given up
    sim:advance(60)
    assert.same({ 1, 2, 3 }, sim.spawned)
    assert.is_nil(sim:active())
    assert.equal("start_limit: 3 crashes or failed recoveries within 60s", sim.rt:query("view", sim.t).failed)
    assert.is_false(sim.rt.events:latest("failed").ok)
    local r = sim:restart()             -- an operator starts it again
    sim:ready(4)
    assert.is_true(r.ok)
    assert.is_nil(sim.rt:query("view", sim.t).failed)
  end)

  it("forgets crashes older than T", function()
    local sim = up{ options = { start_limit = { 2, 10 } } }
    sim:exit(1, 1); sim:ready(2)
    sim:advance(100)
    sim:exit(2, 1); sim:ready(3)
    assert.equal(3, sim:active())
  end)
end)

describe("immediate", function()
  it("drains the old generation before the new one is ready", function()
    local sim = up{ policy = "immediate" }
    local r = sim:restart()
    assert.is_true(sim:signalled(1, "TERM"))
    sim:ready(2)
    assert.is_true(r.ok)
    assert.equal(2, sim:active())
  end)

  it("recovers with a fresh generation when the new one fails", function()
    local sim = up{ policy = "immediate" }
    local r = sim:restart()
    sim:exit(2, 1)
    assert.is_false(r.ok)
    sim:exit(1, 0) -- the old one finishes its drain: nothing serves now
    assert.same({ 1, 2, 3 }, sim.spawned)
    sim:ready(3)
    assert.equal(3, sim:active())
  end)
end)

describe("bluegreen", function()
  local function bg(options)
    local o = { window = 10, interval = 0.5 }
    for k, v in pairs(options or {}) do o[k] = v end
    return up{ policy = "bluegreen", options = o }
  end

  it("promotes after the window and only then drains the old one", function()
    local sim = bg()
    local r = sim:restart()
    sim:ready(2)
    sim:advance(9.5)
    assert.is_false(sim:signalled(1))
    assert.is_nil(r.done)
    sim:advance(1)
    assert.is_true(r.ok)
    assert.equal(2, sim:active())
    assert.is_true(sim:signalled(1, "TERM"))
  end)

  it("rolls back on a failed check during the window", function()
    local sim = bg{ check = { http = "http://127.0.0.1:{generation+9000}/health" } }
    local r = sim:restart()
    sim:ready(2)
    sim:advance(2)
    sim.probe = function() return true, "status 503" end
    sim:advance(1)
    assert.is_false(r.ok)
    assert.matches("generation 2 failed its check: GET http://127.0.0.1:9002/health: status 503", r.msg)
    assert.equal(1, sim:active())
    assert.is_true(sim:signalled(2, "TERM"))
    assert.is_false(sim:signalled(1))
  end)

  it("rolls back when the new generation's own error ratio is too high", function()
    local sim = bg{ max_error_ratio = 0.01, min_requests = 100 }
    local r = sim:restart()
    sim:ready(2)
    sim:set_stat("http.requests", 50, 2)
    sim:set_stat("http.errors", 10, 2)
    sim:advance(1)
    assert.is_nil(r.done) -- too few requests to judge
    sim:set_stat("http.requests", 500, 2)
    sim:set_stat("http.requests", 10000, 1) -- the old one's figures do not count
    sim:advance(1)
    assert.is_false(r.ok)
    assert.matches("error ratio 0.0200 over 0.01 %(10 of 500%)", r.msg)
  end)

  it("rolls back by hand with baton rollback", function()
    local sim = bg()
    local r = sim:restart()
    sim:ready(2)
    sim:advance(2)
    local rb = sim:rollback()
    assert.is_false(r.ok)
    assert.matches("rolled back by hand", r.msg)
    assert.is_true(rb.ok)
    assert.matches("rolled back; generation 1 serves", rb.msg)
    assert.equal(1, sim:active())
  end)

  it("refuses baton rollback when there is no window", function()
    local sim = up()
    local rb = sim:rollback()
    assert.is_false(rb.ok)
    assert.matches("nothing to roll back", rb.msg)
  end)
end)

describe("triggers", function()
  it("restarts when a watched file changes, and on a timer", function()
    local sim = up{ options = { watch = { "bin/app" }, every = 3600 } }
    sim:touch("bin/app")
    assert.same({ 1, 2 }, sim.spawned)
    assert.is_true(sim:logged("restart requested %(bin/app changed%)"))
    sim:ready(2)
    sim:advance(3600)
    assert.same({ 1, 2, 3 }, sim.spawned)
    assert.is_true(sim:logged("every 3600s"))
  end)

  it("keeps a watch across a reload, with a change seen in between", function()
    local sim = up{ options = { watch = { "app.conf" } } }
    local before = next(sim.watches)
    sim.rt:teardown_triggers(true) -- a reload's first step
    sim:touch("app.conf")          -- a change before the new init ran
    assert.same({ 1 }, sim.spawned)
    sim.rt:init()
    sim:advance(0)
    assert.equal(before, next(sim.watches)) -- the same watch, not a new one
    assert.is_nil(next(sim.watches, before))
    assert.same({ 1, 2 }, sim.spawned)
    assert.is_true(sim:logged("restart requested %(app.conf changed%)"))
  end)

  it("drops a parked watch the new init does not make", function()
    local sim = up{ options = { watch = { "app.conf" } } }
    sim.rt.options = {} -- the reloaded policy watches nothing
    sim.rt:init()
    sim:advance(0)
    assert.is_nil(next(sim.watches))
  end)

  it("fires a stats threshold once per crossing", function()
    local fired = 0
    local sim = up{ policy = {
      init = function(svc)
        svc:when(1, function(s) return (s.stats["http.errors"] or 0) > 10 end,
                 function() fired = fired + 1 end)
      end,
    } }
    sim:advance(3)
    assert.equal(0, fired)
    sim:set_stat("http.errors", 50, 1)
    sim:advance(3)
    assert.equal(1, fired) -- still over: not again
    sim:set_stat("http.errors", 0, 1)
    sim:advance(1)
    sim:set_stat("http.errors", 20, 1)
    sim:advance(1)
    assert.equal(2, fired)
  end)

  it("coalesces scheduled restarts behind a long one instead of queueing them", function()
    -- Each restart waits up to 100 s for a READY=1 that never comes.
    local sim = up{ options = { every = 10, ready = 100 } }
    sim:advance(10)          -- the first tick: generation 2 starts
    assert.same({ 1, 2 }, sim.spawned)
    sim:advance(60)          -- six ticks while it waits
    assert.is_true(sim:logged("every 10s: skipped, a restart is under way %(0 queued%)"))
    sim:advance(35)          -- it rolls back at 110 s; the tick at 110 s or 120 s runs
    sim:advance(15)
    assert.same({ 1, 2, 3 }, sim.spawned) -- not eight: the skipped ticks were dropped
  end)

  it("tells a policy whether a restart is under way and how many wait", function()
    local seen = {}
    local sim = up{ policy = {
      init = function(svc)
        svc:every(1, function(s)
          local busy, queued = s:pending()
          seen[#seen + 1] = { busy, queued }
        end)
      end,
    }, options = {} }
    sim:advance(1)
    assert.same({ false, 0 }, seen[#seen])
    sim:restart()            -- generation 2 waits for READY=1
    sim:restart()
    sim:restart()            -- two behind it
    sim:advance(1)
    assert.same({ true, 2 }, seen[#seen])
    sim:ready(2)             -- the second restart begins: one left behind it
    sim:advance(1)
    assert.same({ true, 1 }, seen[#seen])
  end)

  it("are torn down on stop", function()
    local sim = up{ options = { every = 10 } }
    sim:stop()
    sim:exit(1, 0)
    sim:advance(30)
    assert.same({ 1 }, sim.spawned)
  end)
end)

describe("gradual", function()
  it("opens a drain window for the old generation and signals it at the end", function()
    local sim = up{ policy = "gradual", options = { window = 20 } }
    local r = sim:restart()
    sim:ready(2)
    assert.is_true(r.ok)
    assert.same({ at = 0, seconds = 20 }, sim.drain_windows[1])
    sim:advance(19.9)
    assert.is_false(sim:signalled(1))
    sim:advance(0.2)
    assert.is_true(sim:signalled(1, "TERM"))
    sim:advance(10) -- drain_timeout after the signal
    assert.is_true(sim:signalled(1, "KILL"))
  end)
end)

describe("steered listeners", function()
  local function steered(policy, options)
    local sim = testkit.new{ policy = policy, options = options }
    sim.steered = true
    sim:start()
    sim:ready(1)
    return sim
  end

  it("canary: moves new connections step by step, then promotes", function()
    local sim = steered("canary", { steps = { 10, 50, 100 }, interval = 5 })
    assert.equal(100, sim.weights[1])
    local r = sim:restart()
    sim:ready(2)
    sim:advance(0.1)
    assert.equal(10, sim.weights[2])
    assert.equal(90, sim.weights[1])
    sim:advance(5)
    assert.equal(50, sim.weights[2])
    assert.is_nil(r.done)
    sim:advance(5)
    assert.equal(100, sim.weights[2])
    assert.equal(0, sim.weights[1])
    sim:advance(5.1)
    assert.is_true(r.ok)
    assert.equal(2, sim:active())
    assert.is_false(sim:signalled(1)) -- half a second for handshakes in flight
    sim:advance(0.6)
    assert.is_true(sim:signalled(1, "TERM"))
  end)

  it("canary: a bad error ratio gives every new connection back to the old one", function()
    local sim = steered("canary", { steps = { 10, 100 }, interval = 5, max_error_ratio = 0.01, min_requests = 10 })
    local r = sim:restart()
    sim:ready(2)
    sim:set_stat("http.requests", 100, 2)
    sim:set_stat("http.errors", 50, 2)
    sim:advance(1)
    assert.is_false(r.ok)
    assert.matches("canary at 10%%: generation 2 error ratio", r.msg)
    assert.equal(0, sim.weights[2])
    assert.equal(100, sim.weights[1])
    assert.equal(1, sim:active())
  end)

  it("canary: refuses a shared listener", function()
    local sim = up{ policy = "canary", options = { interval = 1 } }
    local r = sim:restart()
    sim:ready(2)
    sim:advance(0.1)
    assert.is_false(r.ok)
    assert.matches("canary needs a steered listener", r.msg)
  end)

  it("a drain is silent: weight 0 first, the signal once no connection is left", function()
    local sim = steered("graceful", {})
    sim.figures[1] = { connections = 3 }
    local r = sim:restart()
    sim:ready(2)
    sim:advance(0.1)
    assert.is_true(r.ok)
    assert.equal(0, sim.weights[1])
    assert.equal(100, sim.weights[2])
    sim:advance(2)
    assert.is_false(sim:signalled(1))
    sim.figures[1] = { connections = 0 }
    sim:advance(0.2)
    assert.is_true(sim:signalled(1, "TERM"))
  end)

  it("quiet = 0 signals at once", function()
    local sim = steered("graceful", { quiet = 0 })
    sim.figures[1] = { connections = 3 }
    sim:restart()
    sim:ready(2)
    sim:advance(0.1)
    assert.is_true(sim:signalled(1, "TERM"))
  end)

  it("quiet runs out: the signal goes anyway", function()
    local sim = steered("default", { quiet = 3 })
    sim.figures[1] = { connections = 3 }
    sim:restart()
    sim:ready(2)
    sim:advance(2.5)
    assert.is_false(sim:signalled(1))
    sim:advance(1)
    assert.is_true(sim:signalled(1, "TERM"))
  end)
end)
