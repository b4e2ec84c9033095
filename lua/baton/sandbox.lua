-- baton.sandbox: what a policy's code can reach, and how it runs.
--
-- The promise: a policy decides, the supervisor stays safe. So a policy
--   * sees only the globals listed in env(): no io, os.execute, load*,
--     coroutine, debug, collectgarbage, newproxy, setfenv/getfenv;
--   * has its own copies of string, table and math (replacing
--     string.format changes nothing outside the policy), no string.dump,
--     and cannot reach the string metatable that every string shares;
--   * may require only baton.steps, baton.state and baton.policies.NAME,
--     loaded anew for each policy from the sources compiled into the binary
--     (never from package.path or package.cpath), so a policy that changes
--     a module it required changes its own copy only;
--   * runs under a budget (instructions, milliseconds, and memory refused
--     at allocation) whenever it runs: its hooks, and its top level while
--     the file loads.
-- And the runtime never runs a policy's code outside that budget: it reads
-- a policy's values with type() and raw access only, and turns them into
-- text with text(), which calls no metamethod.

local _M = {}

-- What one policy hook may use: instructions and milliseconds per run
-- between two waits (the event loop waits while it runs), the Lua VM's
-- memory, and seconds from start to finish. The service file's
-- policy_limits override them; a file's top level runs under LOAD_LIMITS.
_M.LIMITS = { instructions = 20000000, slice_ms = 20, memory_mb = 256, timeout = 600 }
_M.LOAD_LIMITS = { instructions = 20000000, slice_ms = 2000, memory_mb = 256 }

local function pack(...) return { n = select("#", ...), ... } end

-- Under plain LuaJIT (busted, the test kit) there is no C budget: a Lua
-- count hook gives the same instruction and time limits, so a spec of a
-- policy whose hook loops fails instead of hanging busted. (The memory
-- cap needs the C allocator: not here.) A Lua hook cannot yield, so a
-- stop is an error, raised again at every count until the resume
-- returns, and stopped() tells the policy's pcall not to swallow it.
-- Compiled code calls no hook: the JIT is turned off at the first
-- budgeted resume, as the C budget does in the supervisor's VM.
local function lua_budget()
  local STEP = 1000
  local cur -- the budget of the resume under way: { limits, used, t0, stop, critical }
  local function hook()
    local b = cur
    -- LuaJIT's hook is global: only the budgeted coroutine's code counts.
    if not b or b.critical > 0 or coroutine.running() ~= b.co then return end
    if not b.stop then
      b.used = b.used + STEP
      if b.used > (b.limits.instructions or math.huge) then
        b.stop = "instruction budget"
      elseif (os.clock() - b.t0) * 1000 > (b.limits.slice_ms or math.huge) then
        b.stop = "time budget"
      end
      -- From now on at every instruction: a pcall that caught the stop
      -- (a policy table written in a spec has the real pcall) gets it again
      -- at its next instruction, so the stop reaches the hook's end.
      if b.stop then debug.sethook(hook, "", 1) end
    end
    if b.stop then error("stopped: over its " .. b.stop, 0) end
  end
  local B = {}
  function B.stopped() return cur ~= nil and cur.stop ~= nil end
  function B.critical(fn, ...)
    local b = cur
    if not b then return fn(...) end
    b.critical = b.critical + 1
    local r = pack(pcall(fn, ...))
    b.critical = b.critical - 1
    if not r[1] then error(r[2], 0) end
    return unpack(r, 2, r.n)
  end
  function B.resume(co, limits, ...)
    if jit and jit.status() then
      jit.off()
      jit.flush()
    end
    local prev = cur
    local b = { co = co, limits = limits, used = 0, t0 = os.clock(), critical = 0 }
    cur = b
    debug.sethook(hook, "", STEP)
    local r = pack(coroutine.resume(co, ...))
    cur = prev
    if prev then debug.sethook(hook, "", STEP) else debug.sethook() end
    return b.stop or false, unpack(r, 1, r.n)
  end
  return B
end

-- The budgeted resume, from the C core (lua_budget.c); under plain LuaJIT
-- (busted, the test kit), the Lua one above.
local budget = package.loaded["baton.budget"] or lua_budget()

-- The embedded sources (module name -> source), from the C core; absent
-- under plain LuaJIT, where modules are read from the source tree.
local sources = package.loaded["baton.sources"]

-- Text for a value a policy handed over, without running any of its code.
function _M.text(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" or t == "boolean" or t == "nil" then return tostring(v) end
  return "a " .. t
end

local function allowed(mod)
  return mod == "baton.steps" or mod == "baton.state" or mod:match("^baton%.policies%.[%w_]+$") ~= nil
end

-- The source of module MOD and its chunk name, or nil. Inside the binary,
-- only the embedded sources: never package.path.
function _M.source(mod)
  local path = mod:match("^baton%.policies%.([%w_]+)$")
  path = path and ("policies/" .. path .. ".lua") or ("lua/" .. mod:gsub("%.", "/") .. ".lua")
  if sources then
    local src = sources[mod]
    return src, src and ("@" .. path)
  end
  -- Outside the binary (busted, the test kit): an installed copy on
  -- package.path (share/lua/5.1/baton/...), else the source tree.
  local file = package.searchpath(mod, package.path) or (_M.root .. path)
  local f = io.open(file, "rb")
  if not f then return nil end
  local src = f:read("*a")
  f:close()
  return src, "@" .. path
end
-- Where the source tree is, when there are no embedded sources.
_M.root = ""

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function policy_getmetatable(v)
  if type(v) == "string" then return nil end -- shared by every string: not the policy's
  return getmetatable(v)
end

local stopped = budget.stopped

-- pcall and xpcall as a policy has them: once its budget is spent, an
-- error is passed on, never swallowed. (Where the hook can yield, a stop
-- never reaches them; inside a C function that called back into Lua, the
-- stop is an error, and this is what keeps a loop of pcalls from going on.)
local function policy_pcall(f, ...)
  local r = pack(pcall(f, ...))
  if not r[1] and stopped() then error(r[2], 0) end
  return unpack(r, 1, r.n)
end

local function policy_xpcall(f, handler, ...)
  local r = pack(xpcall(f, function(e)
    if stopped() then return e end
    return handler(e)
  end, ...))
  if not r[1] and stopped() then error(r[2], 0) end
  return unpack(r, 1, r.n)
end

-- Runs FN(...) as the runtime's own few steps, called from policy code:
-- no budget stop and no memory cap between them (baton.budget.critical).
-- FN must not wait.
function _M.critical(fn, ...)
  return budget.critical(fn, ...)
end

-- What JSON may cost a policy: lua-cjson works outside the VM's memory
-- cap and its budget, so what it is given is sized first, in Lua.
local JSON_MAX = 64 * 1024 * 1024

local function json_size(v, depth, left)
  local t = type(v)
  if t == "string" then return #v + 2 end
  if t ~= "table" then return 24 end
  if depth > 100 then error("JSON: nested more than 100 deep", 0) end
  local n = 2
  for k, x in next, v do
    n = n + json_size(k, depth + 1, left) + json_size(x, depth + 1, left) + 2
    if n > left then error(("JSON: the value would encode to more than %d bytes"):format(JSON_MAX), 0) end
  end
  return n
end

-- A lua-cjson instance of the policy's own (its settings are its own) whose
-- encode and decode are bounded in size.
local function policy_json()
  local inst = require("cjson.safe").new()
  local out = {}
  for k, f in pairs(inst) do out[k] = f end
  out.encode = function(v)
    json_size(v, 0, JSON_MAX)
    return inst.encode(v)
  end
  out.decode = function(s)
    if type(s) == "string" and #s > JSON_MAX then
      return nil, ("JSON: %d bytes, over %d"):format(#s, JSON_MAX)
    end
    return inst.decode(s)
  end
  return out
end

-- A fresh global table for policy code. CACHE holds the modules this
-- policy required (one instance per policy load).
function _M.env(cache)
  local str = copy(string)
  str.dump = nil
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = policy_pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, unpack = unpack, xpcall = policy_xpcall, setmetatable = setmetatable,
    getmetatable = policy_getmetatable, rawget = rawget, rawset = rawset,
    rawequal = rawequal,
    string = str, table = copy(table), math = copy(math),
    os = { getenv = os.getenv, time = os.time, clock = os.clock, date = os.date },
  }
  env._G = env
  env.require = function(mod) return _M.require(mod, cache, 2) end
  return env
end

-- require() as a policy has it: the allowed modules, one instance per
-- policy (CACHE), loaded from the embedded sources into a sandboxed env.
function _M.require(mod, cache, level)
  if type(mod) ~= "string" or not allowed(mod) then
    error(("a policy may require only baton.steps, baton.state and baton.policies.NAME, not %s")
      :format(type(mod) == "string" and ("'" .. mod .. "'") or _M.text(mod)), (level or 1) + 1)
  end
  local have = cache[mod]
  if have ~= nil then return have end
  local src, name = _M.source(mod)
  if not src then error(("no module '%s' in baton"):format(mod), (level or 1) + 1) end
  local chunk = assert(loadstring(src, name))
  local env = _M.env(cache)
  if mod == "baton.state" then
    -- Its JSON helpers hand out lua-cjson: an instance of this policy's own,
    -- bounded in size, never the shared module.
    env.require = function(m)
      if m == "cjson.safe" then
        cache["cjson.safe"] = cache["cjson.safe"] or policy_json()
        return cache["cjson.safe"]
      end
      return _M.require(m, cache, 2)
    end
  end
  setfenv(chunk, env)
  cache[mod] = true -- a module that requires itself gets true, not a loop
  local v = chunk(mod)
  if v == nil then v = true end
  cache[mod] = v
  return v
end

-- Resumes coroutine CO under LIMITS. Returns what coroutine.resume does,
-- preceded by why it was stopped (a string: "instruction budget",
-- "time budget", "memory cap") or false.
function _M.resume(co, limits, ...)
  return budget.resume(co, limits, ...)
end

-- Runs FN(...) to its end under LOAD_LIMITS, for code that runs while a
-- file loads (a service file, a policy's top level): returns true,
-- results... or false and a message. It may not wait.
function _M.run(what, fn, ...)
  local co = coroutine.create(fn)
  local res = { _M.resume(co, _M.LOAD_LIMITS, ...) }
  if res[1] then return false, ("%s exceeded its %s while loading"):format(what, res[1]) end
  if not res[2] then return false, _M.text(res[3]) end
  if coroutine.status(co) ~= "dead" then return false, what .. " may not wait while it loads" end
  return true, unpack(res, 3, table.maxn(res))
end

-- Loads SRC (named NAME) as policy code in a fresh sandbox; returns what
-- its top level returns, or nil and a message.
function _M.load(src, name, what)
  local chunk, err = loadstring(src, name)
  if not chunk then return nil, err end
  setfenv(chunk, _M.env({}))
  local ok, v = _M.run(what or name:gsub("^@", ""), chunk)
  if not ok then return nil, v end
  return v
end

return _M
