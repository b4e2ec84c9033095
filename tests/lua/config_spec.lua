-- Service files: good ones normalized, bad ones refused with file:line:key.
local config = require("baton.config")

local tmp = os.tmpname()
local function load(src, opts)
  local f = assert(io.open(tmp, "w"))
  f:write(src)
  f:close()
  return config.load(tmp, opts)
end

local function refused(src, pattern)
  local cfg, err = load(src)
  assert.is_nil(cfg)
  assert.matches(pattern, err)
  return err
end

describe("service file", function()
  it("normalizes the state table, and refuses a bad one", function()
    local cfg = assert(load([[return { command = { "a" }, state = { version = 2, max_size = "64M" },
      fdstore_max = 8 }]]))
    assert.same({ name = "state", version = 2, max_size = 64 * 2^20 }, cfg.state)
    assert.equal(8, cfg.fdstore_max)
    local d = assert(load([[return { command = { "a" } }]]))
    assert.same({ name = "state", max_size = 256 * 2^20 }, d.state)
    assert.equal(64, d.fdstore_max)
    refused([[return { command = { "a" }, state = { version = -1 } }]], "version must be a whole number")
    refused([[return { command = { "a" }, state = { max_size = "lots" } }]], "max_size must be")
    refused([[return { command = { "a" }, state = { name = "a:b" } }]], "name must be")
    refused([[return { command = { "a" }, state = { versoin = 1 } }]], "unknown key 'versoin'")
    refused([[return { command = { "a" }, fdstore_max = 5000 }]], "fdstore_max")
  end)

  it("normalizes a minimal file", function()
    local cfg = assert(load([[return { command = { "app", "--port", 80 } }]], { runtime_dir = "/run/x" }))
    assert.same({ "app", "--port", "80" }, cfg.command)
    assert.equal(30, cfg.ready_timeout)
    assert.equal(30, cfg.drain_timeout)
    assert.same({}, cfg.listen)
    assert.equal("/run/x/" .. cfg.name .. ".sock", cfg.control)
    assert.equal("default", cfg.policy_name)
    assert.is_function(cfg.policy.restart)
  end)

  -- The fd layout is a contract (LISTEN_FDS): the text's layout must not
  -- change it. A map is taken in its names' byte order, whatever its
  -- formatting; the array of pairs gives exactly the file's order.
  describe("listener order", function()
    local function names(cfg)
      local out = {}
      for i, l in ipairs(cfg.listen) do out[i] = l.name end
      return out
    end
    local multi = [[
return {
  command = { "app" },
  listen = {
    zeta = "tcp://127.0.0.1:1",
    alpha = "tcp://127.0.0.1:2",
    mid = { "unix:/tmp/x.sock", backlog = 7 },
  },
}]]
    local one = 'return { command = { "app" }, listen = { zeta = "tcp://127.0.0.1:1", ' ..
      'alpha = "tcp://127.0.0.1:2", mid = { "unix:/tmp/x.sock", backlog = 7 } } }' -- one line
    local shuffled = [[
return { command = { "app" },
  listen = { mid = { "unix:/tmp/x.sock", backlog = 7 },
    zeta = "tcp://127.0.0.1:1", alpha =
    "tcp://127.0.0.1:2" } }]]

    it("a map written over several lines: names in byte order", function()
      local cfg = assert(load(multi))
      assert.same({ "alpha", "mid", "zeta" }, names(cfg))
      assert.equal(7, cfg.listen[2].backlog)
      assert.equal(4096, cfg.listen[1].backlog)
    end)

    it("the same map on one line, or laid out otherwise: the same layout", function()
      local want = names(assert(load(multi)))
      assert.same(want, names(assert(load(one))))
      assert.same(want, names(assert(load(shuffled))))
      assert.same(assert(load(multi)).listen, assert(load(one)).listen)
    end)

    it("pairs: exactly the file's order", function()
      local cfg = assert(load([[return { command = { "app" }, listen = {
        { "zeta", "tcp://127.0.0.1:1" }, { "alpha", "tcp://127.0.0.1:2" },
        { "mid", "unix:/tmp/x.sock", backlog = 7 } } }]]))
      assert.same({ "zeta", "alpha", "mid" }, names(cfg))
      assert.equal(7, cfg.listen[3].backlog)
    end)
  end)

  it("takes an array of pairs for a fixed order", function()
    local cfg = assert(load([[return { command = {"a"}, backlog = 64,
      listen = { {"b", "tcp://127.0.0.1:1"}, {"a", "udp://127.0.0.1:2"} } }]]))
    assert.same({ name = "b", address = "tcp://127.0.0.1:1", backlog = 64 }, cfg.listen[1])
    assert.equal("a", cfg.listen[2].name)
  end)

  it("takes a per_generation listener on port 0 only", function()
    local cfg = assert(load([[return { command = {"a"},
      listen = { http = "tcp://127.0.0.1:0", health = { "tcp://127.0.0.1:0", per_generation = true } } }]]))
    assert.equal("health", cfg.listen[1].name)
    assert.is_true(cfg.listen[1].per_generation)
    assert.is_nil(cfg.listen[2].per_generation)
    refused([[return { command = {"a"}, listen = { h = { "tcp://127.0.0.1:9000", per_generation = true } } }]],
      "a per_generation listener is tcp://HOST:0")
    refused([[return { command = {"a"}, listen = { h = { "unix:/tmp/x.sock", per_generation = true } } }]],
      "a per_generation listener is tcp://HOST:0")
    refused([[return { command = {"a"}, listen = { h = { "tcp://127.0.0.1:0", per_generation = 1 } } }]],
      "per_generation must be true or false")
  end)

  it("env becomes sorted KEY=VALUE and may not set baton's own variables", function()
    local cfg = assert(load([[return { command = {"a"}, env = { B = 2, A = "x" } }]]))
    assert.same({ "A=x", "B=2" }, cfg.env)
    refused([[return { command = {"a"},
      env = { LISTEN_FDS = 3 } }]], ":2: key 'env': LISTEN_FDS is set by baton itself")
  end)

  it("names file and line of a syntax error", function()
    refused("return {\n  command = { 'a' \n  name = 'x'\n}", tmp:gsub("%p", "%%%0") .. ":3:")
  end)

  it("names file, line and key of a wrong type", function()
    local err = refused("return {\n  command = {'a'},\n  ready_timeout = 'soon',\n}",
      ":3: key 'ready_timeout': expected a number, got string")
    assert.equal(1, select(2, err:gsub(tmp:gsub("%p", "%%%0"), "")))
    refused("return {\n  command = 'app --x',\n}", ":2: key 'command': expected a table, got string")
    refused("return {\n  command = {'a'},\n  listen = 8080,\n}", ":3: key 'listen': expected a table")
  end)

  it("refuses unknown keys, missing commands, bad values", function()
    refused("return {\n  command = {'a'},\n  comand = {'b'},\n}", ":3: key 'comand': unknown key")
    refused("return { }", "key 'command': expected a table, got nothing")
    refused("return { command = {} }", "key 'command': needs at least the program")
    refused("return { command = {'a'}, drain_timeout = -1 }", "key 'drain_timeout': must be a positive")
    refused("return { command = {'a'}, listen = { ['a:b'] = 'tcp://127.0.0.1:1' } }", "listener name")
    refused("return { command = {'a'}, listen = { a = 'tcp://1.2.3.4:1', b = 'tcp://1.2.3.4:1' } }",
      "listed twice")
    -- Port 0 is a new free port each time: listing it twice is no clash.
    local two = assert(load("return { command = {'a'}, " ..
      "listen = { a = 'tcp://127.0.0.1:0', b = 'tcp://127.0.0.1:0' } }"))
    assert.equal(2, #two.listen)
    refused("return 42", "must return a plain table, it returned number")
    refused("error('nope')", "nope")
  end)

  it("checks addresses with the function it is given", function()
    local cfg, err = load("return {\n command = {'a'},\n listen = { web = 'tcp://nowhere:80' },\n}",
      { check_address = function() return nil, "not numeric" end })
    assert.is_nil(cfg)
    assert.matches(":3: key 'listen.web': listener 'web': not numeric", err)
  end)

  it("service files run in a sandbox", function()
    refused("return { command = { io.read() } }", "attempt to index global 'io'")
    refused("os.execute('true') return {}", "attempt to call field 'execute'")
  end)
end)

describe("policy loading", function()
  it("finds built-ins and refuses unknown ones", function()
    assert.is_table(config.load_policy("default"))
    local p, err = config.load_policy("nosuch")
    assert.is_nil(p)
    assert.matches("no built%-in policy named 'nosuch'", err)
  end)

  it("refuses a policy with a misspelled or non-function hook", function()
    assert.matches("unknown hook 'restrat'", select(2, config.load_policy({ restrat = function() end })))
    assert.matches("hook 'restart' must be a function", select(2, config.load_policy({ restart = 1 })))
  end)

  it("loads a policy file relative to the service file and reports its errors", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir) == 0)
    local f = assert(io.open(dir .. "/p.lua", "w"))
    f:write("local p = {}\nfunction p.restart(svc) return nil, 'no' end\nreturn p\n")
    f:close()
    assert.is_function(assert(config.load_policy("p.lua", dir)).restart)
    f = assert(io.open(dir .. "/bad.lua", "w"))
    f:write("local p = {\nreturn p\n")
    f:close()
    local p, err = config.load_policy("bad.lua", dir)
    assert.is_nil(p)
    assert.matches("bad.lua:2:", err)
    os.execute("rm -rf " .. dir)
  end)
end)
