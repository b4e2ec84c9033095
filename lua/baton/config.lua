-- baton.config: loads a service file and checks it, key by key.
--
-- The service file is Lua that returns a table (see docs/service-file.md).
-- load() returns a normalized copy that the C core and the runtime read,
-- or nil and a message "FILE:LINE: key 'KEY': what is wrong".

local sandbox = require("baton.sandbox")

local _M = {}

local text = sandbox.text

-- The C core's address parser, when this runs inside baton.
local native = package.loaded["baton.native"]

local DEFAULTS = {
  ready_timeout = 30,
  drain_timeout = 30,
  backlog = 4096,
  policy = "default",
  stats_capacity = 4096,
  fdstore_max = 64,
  state_name = "state",
  state_max_size = 256 * 1024 * 1024,
}

-- A service file or a policy is a page of Lua, not a data dump: past this,
-- it is refused before it is read.
local MAX_FILE = 1024 * 1024

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local size = f:seek("end")
  if size and size > MAX_FILE then
    f:close()
    return nil, ("%d bytes, over the %d a service file or policy may hold"):format(size, MAX_FILE)
  end
  f:seek("set")
  local s = f:read("*a")
  f:close()
  if not s then return nil, "cannot read it (a folder?)" end
  return s
end

local function dirname(path)
  return path:match("^(.*)/[^/]*$") or "."
end

local function resolve(dir, path)
  if path:sub(1, 1) == "/" then return path end
  if dir == "." then return path end
  return dir .. "/" .. path
end

-- V as plain data: a copy made with raw access, where no table has a
-- metatable (functions are kept: hooks and options may be functions).
-- What runs unbudgeted (this loader, the runtime) then never calls the
-- code of a service file or a policy by indexing its values.
-- At most this many values in all: the copy runs unbudgeted.
local MAX_VALUES = 100000

local function copy_plain(v, where, depth, budget)
  if type(v) ~= "table" then return v end
  if getmetatable(v) ~= nil then error({ msg = where .. " is a table with a metatable: plain data only" }, 0) end
  if depth > 32 then error({ msg = where .. " is nested more than 32 tables deep" }, 0) end
  local c = {}
  for k, x in next, v do
    if type(k) == "table" then error({ msg = where .. " has a table as a key" }, 0) end
    budget.left = budget.left - 1
    if budget.left < 0 then error({ msg = ("%s holds more than %d values"):format(where, MAX_VALUES) }, 0) end
    c[k] = copy_plain(x, where, depth + 1, budget)
  end
  return c
end

local function plain(v, where)
  return copy_plain(v, where, 0, { left = MAX_VALUES })
end

-- Every "key =" (or '["key"] =') from line FROM on, with the line it first
-- appears on: one pass over the text, for many keys at once. A table value
-- has no line of its own in Lua, so messages a person can act on read the
-- text.
local function lines_of_keys(src, from)
  local out, n = {}, 0
  for line in (src .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if n >= from then
      for key in line:gmatch("([%w_]+)%s*=[^=]") do out[key] = out[key] or n end
      for key in line:gmatch("%[%s*[\"']([^\"']+)[\"']%s*%]%s*=") do out[key] = out[key] or n end
    end
  end
  return out
end

-- The line where KEY is first assigned in SRC (from line FROM on).
local function line_of(src, key, from)
  return lines_of_keys(src, from or 1)[key]
end

local Checker = {}
Checker.__index = Checker

function Checker:fail(key, fmt, ...)
  local line = line_of(self.src, key:match("^[%w_]+") or key)
  local where = self.file .. (line and (":" .. line) or "")
  error({ msg = ("%s: key '%s': " .. fmt):format(where, key, ...) }, 0)
end

function Checker:expect(key, value, want)
  local t = type(value)
  if t ~= want then
    self:fail(key, "expected a %s, got %s", want, t == "nil" and "nothing" or t)
  end
end

local NAME = "^[%w_.-]+$"
-- Steering needs classic BPF on a reuseport group: Linux's alone.
local STEER_HOST = jit == nil or jit.os == "Linux"

-- The known name (a key of KNOWN, a set) closest to WORD, when a typo
-- away (at most 2 edits, and fewer than half its letters), or nil.
function _M.suggest(word, known)
  local function distance(a, b)
    local prev = {}
    for j = 0, #b do prev[j] = j end
    for i = 1, #a do
      local cur = { [0] = i }
      for j = 1, #b do
        local cost = a:sub(i, i) == b:sub(j, j) and 0 or 1
        cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      end
      prev = cur
    end
    return prev[#b]
  end
  if type(word) ~= "string" or #word > 64 then return nil end
  local best, best_d
  for k in pairs(known) do
    if type(k) == "string" then
      local d = distance(word, k)
      if d <= 2 and d * 2 < #word and (not best_d or d < best_d or (d == best_d and k < best)) then
        best, best_d = k, d
      end
    end
  end
  return best
end

-- listen = { http = "tcp://..." } or { {"http", "tcp://..."}, ... } or
-- { http = { "tcp://...", backlog = 128 } }; { "tcp://127.0.0.1:0",
-- per_generation = true } is a listener each generation gets its own of;
-- { "tcp://127.0.0.1:8080", steer = true } a steered one (docs/steering.md).
function Checker:listeners(listen, backlog, check_address)
  local out, names, addresses = {}, {}, {}
  local function add(key, name, spec)
    local address, bl, per_gen, steer = spec, backlog, nil, nil
    if type(spec) == "table" then
      address, bl, per_gen = spec[1] or spec.address, spec.backlog or backlog, spec.per_generation
      steer = spec.steer
    end
    if steer ~= nil and type(steer) ~= "boolean" then
      self:fail(key, "steer must be true or false")
    end
    if steer and per_gen then
      self:fail(key, "a listener is steered or per_generation, not both")
    end
    if steer and type(address) == "string" and not address:match("^tcp://") then
      self:fail(key, "steer works on tcp:// listeners only (%s: %s)", address,
        address:match("^unix:") and "a unix socket has no SO_REUSEPORT group to steer"
        or "UDP is not steered: each datagram, not each connection, would be split")
    end
    if steer and not STEER_HOST then
      self:fail(key, "steer needs Linux's SO_ATTACH_REUSEPORT_CBPF, which this host lacks")
    end
    if per_gen ~= nil and type(per_gen) ~= "boolean" then
      self:fail(key, "per_generation must be true or false")
    end
    if per_gen and not (type(address) == "string" and address:match("^tcp://.*:0$")) then
      self:fail(key, "a per_generation listener is tcp://HOST:0 (each generation gets its own port); got %s",
        tostring(address))
    end
    if type(name) ~= "string" or not name:match(NAME) or #name > 255 then
      self:fail(key, "listener name must be letters, digits, '_', '.' or '-' (got %s)", tostring(name))
    end
    if type(address) ~= "string" then
      self:fail(key, "listener '%s' needs an address string", name)
    end
    if type(bl) ~= "number" or bl < 1 or bl > 65535 or bl % 1 ~= 0 then
      self:fail(key, "backlog must be a whole number from 1 to 65535")
    end
    if check_address then
      local ok, why = check_address(address)
      if not ok then self:fail(key, "listener '%s': %s", name, why) end
    end
    if names[name] then self:fail(key, "listener '%s' is named twice", name) end
    -- Port 0 asks the kernel for a free port each time: never the same twice.
    if addresses[address] and not address:match(":0$") then
      self:fail(key, "address %s is listed twice", address)
    end
    names[name], addresses[address] = true, true
    out[#out + 1] = { name = name, address = address, backlog = bl, per_generation = per_gen or nil,
      steer = steer or nil }
  end

  if #listen > 0 then
    for i, pair in ipairs(listen) do
      if type(pair) ~= "table" then
        self:fail("listen", "entry %d: expected {name, address}", i)
      end
      add("listen", pair[1] or pair.name, { pair[2] or pair.address, backlog = pair.backlog,
        per_generation = pair.per_generation, steer = pair.steer })
    end
    return out
  end
  -- A Lua table keeps no order, and the text's layout must not decide the
  -- fd layout: a name = address map is taken in the names' byte order.
  -- The array of { name, address } pairs is the way to choose the order.
  local names_sorted = {}
  for name in pairs(listen) do
    if type(name) ~= "string" then
      self:fail("listen", "mixes {name, address} pairs with name = address entries")
    end
    names_sorted[#names_sorted + 1] = name
  end
  table.sort(names_sorted)
  for _, name in ipairs(names_sorted) do add("listen." .. name, name, listen[name]) end
  return out
end

function Checker:command(cmd)
  self:expect("command", cmd, "table")
  if #cmd == 0 then self:fail("command", "needs at least the program to run") end
  local out = {}
  for i = 1, #cmd do
    local a = cmd[i]
    if type(a) == "number" then a = tostring(a) end
    if type(a) ~= "string" then self:fail("command", "argument %d is a %s, not a string", i, type(a)) end
    if a:find("%z") then self:fail("command", "argument %d contains a NUL byte", i) end
    out[i] = a
  end
  return out
end

function Checker:env(env)
  local out = {}
  if env == nil then return out end
  self:expect("env", env, "table")
  for k, v in pairs(env) do
    if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
      self:fail("env", "variable name %s is not NAME", tostring(k))
    end
    if type(v) == "number" or type(v) == "boolean" then v = tostring(v) end
    if type(v) ~= "string" then self:fail("env", "value of %s is a %s", k, type(v)) end
    if k:match("^LISTEN_") or k == "NOTIFY_SOCKET" or k:match("^BATON_") then
      self:fail("env", "%s is set by baton itself", k)
    end
    out[#out + 1] = k .. "=" .. v
  end
  table.sort(out)
  return out
end

function Checker:positive(key, v)
  self:expect(key, v, "number")
  if not (v > 0 and v < 1e9) then self:fail(key, "must be a positive number of seconds") end
  return v
end

local KNOWN = {
  name = true, control = true, listen = true, command = true, env = true, cwd = true,
  ready_timeout = true, drain_timeout = true, policy = true, backlog = true,
  log_level = true, log_format = true, metrics = true, stats_capacity = true, policy_limits = true,
  state = true, fdstore_max = true, user = true, group = true, limits = true,
}

-- The resource limits `limits` may set on each generation (setrlimit).
local LIMITS = { nofile = true, core = true, nproc = true, memlock = true, stack = true, as = true,
  fsize = true, cpu = true, data = true, rss = true, msgqueue = true, nice = true, rtprio = true }
_M.LIMITS = LIMITS

-- user = "www-data" or a uid; group = "www-data" or a gid: who each
-- generation runs as. Looked up now (so `baton check` refuses a user the
-- system does not have); the C core computes the supplementary groups.
function Checker:identity(t, cfg)
  for _, key in ipairs({ "user", "group" }) do
    local v = t[key]
    if v ~= nil and type(v) ~= "string" and not (type(v) == "number" and v >= 0 and v % 1 == 0) then
      self:fail(key, "expected a %s name or a number, got %s", key, type(v))
    end
  end
  if t.user ~= nil then
    cfg.user = tostring(t.user)
    if native and native.user then
      local uid, gid, name = native.user(t.user)
      if not uid then self:fail("user", "%s", gid) end
      cfg.uid, cfg.gid, cfg.user = uid, gid, name
    end
  end
  if t.group ~= nil then
    cfg.group = tostring(t.group)
    if native and native.group then
      local gid, name = native.group(t.group)
      if not gid then self:fail("group", "%s", name) end
      cfg.gid, cfg.group = gid, name
    end
  end
end

-- limits = { nofile = 65536, core = 0, nproc = { 512, 1024 }, stack = "unlimited" }:
-- each a number (soft and hard), "unlimited", or { soft, hard }. Normalized
-- to { NAME = { soft, hard } } with -1 for unlimited.
function Checker:limits(t)
  if t == nil then return nil end
  self:expect("limits", t, "table")
  local known = {}
  for k in pairs(LIMITS) do known[#known + 1] = k end
  table.sort(known)
  local out = {}
  local function value(name, v)
    if v == "unlimited" or v == "infinity" then return -1 end
    if type(v) ~= "number" or v < 0 or v % 1 ~= 0 then
      self:fail("limits", "%s: expected a whole number or \"unlimited\", got %s", name, text(v))
    end
    return v
  end
  for k, v in pairs(t) do
    if not LIMITS[k] then
      self:fail("limits", "unknown limit '%s' (%s)", tostring(k), table.concat(known, ", "))
    end
    local soft, hard
    if type(v) == "table" then
      soft, hard = value(k, v[1] or v.soft), value(k, v[2] or v.hard)
    else
      soft = value(k, v)
      hard = soft
    end
    if hard ~= -1 and (soft == -1 or soft > hard) then
      self:fail("limits", "%s: the soft limit is over the hard one", k)
    end
    out[k] = { soft, hard }
  end
  return out
end

-- A size in bytes: a number, or a string with a K, M or G suffix ("64M").
local function size_bytes(v)
  if type(v) == "number" then return v end
  if type(v) ~= "string" then return nil end
  local n, unit = v:match("^(%d+)%s*([KkMmGg]?)[iI]?[Bb]?$")
  if not n then return nil end
  local mult = ({ [""] = 1, k = 2^10, m = 2^20, g = 2^30 })[unit:lower()]
  return tonumber(n) * mult
end

-- The state = { ... } table: how state blobs are named, checked, migrated.
function Checker:state(t)
  local out = { name = DEFAULTS.state_name, max_size = DEFAULTS.state_max_size }
  if t == nil then return out end
  self:expect("state", t, "table")
  for k in pairs(t) do
    if k ~= "name" and k ~= "version" and k ~= "max_size" then
      self:fail("state", "unknown key '%s' (name, version, max_size)", tostring(k))
    end
  end
  if t.name ~= nil then
    if type(t.name) ~= "string" or not t.name:match("^[!-9;-~]+$") or #t.name > 255 then
      self:fail("state", "name must be 1-255 printable characters without ':' (an FDNAME)")
    end
    out.name = t.name
  end
  if t.version ~= nil then
    local v = t.version
    if type(v) ~= "number" or v < 0 or v > 4294967295 or v % 1 ~= 0 then
      self:fail("state", "version must be a whole number from 0 to 4294967295")
    end
    out.version = v
  end
  if t.max_size ~= nil then
    local n = size_bytes(t.max_size)
    if not n or n < 0 or n % 1 ~= 0 or n > 2^46 then
      self:fail("state", "max_size must be a number of bytes or a size such as \"64M\" or \"2G\"")
    end
    out.max_size = n
  end
  return out
end

local WILDCARD = { ["0.0.0.0"] = true, ["::"] = true }

-- The name of the listener in LISTEN (cfg.listen) that a TCP connection to
-- HOSTPORT ("HOST:PORT", "[V6]:PORT") reaches, when the supervisor holds
-- it (a shared tcp listener with its port written out), or nil. A tcp
-- probe of it passes whatever the app does: the kernel completes the
-- handshake into the supervisor's socket. The running supervisor refuses
-- such a probe by the socket's real address (port 0 included); this
-- catches at `baton check` what the file itself says.
function _M.own_listener(listen, hostport)
  if type(hostport) ~= "string" then return nil end
  local host, port = hostport:match("^%[([^%]]+)%]:(%d+)$")
  if not host then host, port = hostport:match("^([^:]+):(%d+)$") end
  if not host or tonumber(port) == 0 then return nil end
  for _, l in ipairs(listen or {}) do
    if not l.per_generation and type(l.address) == "string" then
      local lhost, lport = l.address:match("^tcp://%[([^%]]+)%]:(%d+)$")
      if not lhost then lhost, lport = l.address:match("^tcp://([^:]+):(%d+)$") end
      if lport == port and (lhost == host or WILDCARD[lhost] or WILDCARD[host]) then return l.name end
    end
  end
  return nil
end

-- The `control = "..."` or `name = "..."` that the text of a service file
-- which does not run holds, when it holds exactly one: nil otherwise.
local function key_in_text(src, key)
  local found
  for _, v in ("\n" .. src):gmatch("[^%w_.]" .. key .. "%s*=%s*([\"'])([^\n]-)%1") do
    if found then return nil end
    found = v
  end
  return found
end

-- The control socket of the service FILE describes, and nothing more of
-- it: what a client command (`baton status -f FILE`) needs. Only `control`
-- and `name` are read; the policy is not loaded and no other key is
-- checked, so an edit that broke the policy or another key cannot lock an
-- operator out of the running supervisor when it matters most. A file
-- that does not run at all (a syntax error) still names its socket when
-- its text holds one `control = "..."` line. opts: runtime_dir.
-- Returns the path, or nil and a message.
function _M.control(file, opts)
  opts = opts or {}
  local src, err = read_file(file)
  if not src then return nil, ("%s: cannot read: %s"):format(file, err) end
  local dir = dirname(file)
  local control, name
  local t, lerr = sandbox.load(src, "@" .. file)
  if type(t) == "table" then
    -- Raw access: no code of the file runs outside its load budget.
    control, name = rawget(t, "control"), rawget(t, "name")
  else
    control, name = key_in_text(src, "control"), key_in_text(src, "name")
    if control == nil and name == nil then
      return nil, ("%s: cannot find its control socket: %s (give -s PATH)"):format(file,
        lerr or "it does not return a table")
    end
  end
  if control ~= nil then
    if type(control) ~= "string" or control == "" then
      return nil, ("%s: key 'control': expected a path, got %s (give -s PATH)"):format(file, type(control))
    end
    return resolve(dir, control)
  end
  name = name or file:match("([^/]+)$"):gsub("%.lua$", "")
  if type(name) ~= "string" or not name:match(NAME) then
    return nil, ("%s: key 'name': not a service name, so no default control socket (give -s PATH)"):format(file)
  end
  return (opts.runtime_dir or "/tmp") .. "/" .. name .. ".sock"
end

-- opts: runtime_dir (default control socket's folder), check_address
-- (function(address) -> ok, why), load_policy (function(spec, dir) ->
-- policy, err, name).
function _M.load(file, opts)
  opts = opts or {}
  local check_address = opts.check_address or (native and native.check_address)
  local src, err = read_file(file)
  if not src then return nil, ("%s: cannot read: %s"):format(file, err) end
  -- The service file runs in a policy's sandbox, under the load budget.
  local t, lerr = sandbox.load(src, "@" .. file)
  if lerr then return nil, lerr end
  if type(t) ~= "table" or getmetatable(t) ~= nil then
    return nil, ("%s: the service file must return a plain table, it returned %s"):format(file,
      type(t) == "table" and "a table with a metatable" or type(t))
  end

  local c = setmetatable({ file = file, src = src }, Checker)
  local ok2, res = pcall(function()
    t = plain(t, file)
    -- Unknown keys: the first in the file is named (the same one by
    -- `baton check` and `baton run`, whatever order the table has).
    local unknown, lines = {}, lines_of_keys(src, 1)
    for k in pairs(t) do
      if not KNOWN[k] then unknown[#unknown + 1] = tostring(k) end
    end
    table.sort(unknown, function(a, b)
      local la, lb = lines[a] or math.huge, lines[b] or math.huge
      if la ~= lb then return la < lb end
      return a < b
    end)
    if unknown[1] then
      local guess = _M.suggest(unknown[1], KNOWN)
      c:fail(unknown[1], "unknown key%s (known: backlog, command, control, cwd, drain_timeout, env, " ..
        "fdstore_max, group, limits, listen, log_format, log_level, metrics, name, policy, policy_limits, " ..
        "ready_timeout, stats_capacity, state, user)", guess and (", did you mean '" .. guess .. "'?") or "")
    end
    local dir = dirname(file)
    local cfg = { file = file, dir = dir, runtime_dir = opts.runtime_dir }
    local base = file:match("([^/]+)$"):gsub("%.lua$", "")
    cfg.name = t.name or base
    c:expect("name", cfg.name, "string")
    if not cfg.name:match(NAME) then c:fail("name", "must be letters, digits, '_', '.' or '-'") end

    if t.control ~= nil then
      c:expect("control", t.control, "string")
      cfg.control = resolve(dir, t.control)
    else
      cfg.control = (opts.runtime_dir or "/tmp") .. "/" .. cfg.name .. ".sock"
    end

    local backlog = t.backlog == nil and DEFAULTS.backlog or t.backlog
    if type(backlog) ~= "number" or backlog < 1 or backlog > 65535 or backlog % 1 ~= 0 then
      c:fail("backlog", "must be a whole number from 1 to 65535")
    end
    if t.listen == nil then
      cfg.listen = {}
    else
      c:expect("listen", t.listen, "table")
      cfg.listen = c:listeners(t.listen, backlog, check_address)
    end
    cfg.command = c:command(t.command)
    cfg.env = c:env(t.env)
    if t.cwd ~= nil then
      c:expect("cwd", t.cwd, "string")
      cfg.cwd = resolve(dir, t.cwd)
    end
    cfg.ready_timeout = t.ready_timeout == nil and DEFAULTS.ready_timeout
      or c:positive("ready_timeout", t.ready_timeout)
    cfg.drain_timeout = t.drain_timeout == nil and DEFAULTS.drain_timeout
      or c:positive("drain_timeout", t.drain_timeout)
    if t.log_level ~= nil then
      c:expect("log_level", t.log_level, "string")
      local lv = { error = true, warn = true, info = true, debug = true }
      if not lv[t.log_level] then c:fail("log_level", "must be error, warn, info or debug") end
      cfg.log_level = t.log_level
    end
    if t.log_format ~= nil then
      c:expect("log_format", t.log_format, "string")
      if t.log_format ~= "text" and t.log_format ~= "json" then
        c:fail("log_format", "must be text or json")
      end
      cfg.log_format = t.log_format
    end

    if t.metrics ~= nil then
      local m = t.metrics
      if type(m) == "number" then
        if m < 1 or m > 65535 or m % 1 ~= 0 then c:fail("metrics", "port must be 1-65535") end
        m = "tcp://127.0.0.1:" .. m
      end
      c:expect("metrics", m, "string")
      if not m:match("^tcp://") then c:fail("metrics", "must be a tcp:// address or a port number") end
      if check_address then
        local ok, why = check_address(m)
        if not ok then c:fail("metrics", "%s", why) end
      end
      cfg.metrics = m
    end
    local cap = t.stats_capacity == nil and DEFAULTS.stats_capacity or t.stats_capacity
    if type(cap) ~= "number" or cap < 16 or cap > 1048576 or cap % 1 ~= 0 then
      c:fail("stats_capacity", "must be a whole number of metrics from 16 to 1048576")
    end
    cfg.stats_capacity = cap
    local fdmax = t.fdstore_max == nil and DEFAULTS.fdstore_max or t.fdstore_max
    if type(fdmax) ~= "number" or fdmax < 0 or fdmax > 1024 or fdmax % 1 ~= 0 then
      c:fail("fdstore_max", "must be a whole number of fds from 0 to 1024")
    end
    cfg.fdstore_max = fdmax
    cfg.state = c:state(t.state)
    c:identity(t, cfg)
    cfg.limits = c:limits(t.limits)

    if t.policy_limits ~= nil then
      c:expect("policy_limits", t.policy_limits, "table")
      local known = { instructions = true, slice_ms = true, memory_mb = true, timeout = true }
      cfg.policy_limits = {}
      for k, v in pairs(t.policy_limits) do
        if not known[k] then
          c:fail("policy_limits", "unknown limit '%s' (instructions, slice_ms, memory_mb, timeout)", tostring(k))
        end
        if type(v) ~= "number" or v <= 0 then c:fail("policy_limits", "%s must be a positive number", k) end
        cfg.policy_limits[k] = v
      end
    end

    local spec = t.policy == nil and DEFAULTS.policy or t.policy
    if type(spec) ~= "string" and type(spec) ~= "table" then
      c:fail("policy", "expected a built-in name, a file path or a table, got %s", type(spec))
    end
    local policy, perr2, pname, poptions = _M.load_policy(spec, dir)
    if not policy then c:fail("policy", "%s", perr2) end
    cfg.policy, cfg.policy_name, cfg.policy_options = policy, pname, poptions
    local ready = poptions and poptions.ready
    local own = type(ready) == "table" and _M.own_listener(cfg.listen, ready.tcp)
    if own then
      c:fail("policy", "ready.tcp %s is the service's own listener '%s': the supervisor holds that " ..
        "socket, so the kernel completes a connection whether or not the app accepts, and the " ..
        "probe would pass at once; use an http probe on the generation's own port " ..
        "({port:NAME} of a per_generation listener), or a tcp probe of a port the app binds itself",
        ready.tcp, own)
    end
    local pg = type(ready) == "table" and type(ready.tcp) == "string" and ready.tcp:match("{port:([%w_.-]+)}")
    if pg then
      c:fail("policy", "ready.tcp %s is the per_generation listener '%s', which baton binds and " ..
        "passes to each generation listening: the kernel completes a connection whether or not " ..
        "the app accepts; use an http probe there", ready.tcp, pg)
    end
    -- A policy read from a file (not a built-in, not inline) is watched
    -- like the service file. Its name is the path as resolved against the
    -- service file's folder, which may be "." (no slash in it).
    if not pname:match("^[%w_]+$") then cfg.policy_file = pname end
    return cfg
  end)
  if not ok2 then
    if type(res) == "table" and res.msg then return nil, res.msg end
    return nil, tostring(res)
  end
  return res
end

local HOOKS = { init = true, start = true, restart = true, died = true, stop = true, migrate = true }
_M.HOOKS = HOOKS


-- Checks that P (plain) is a table of known hooks, each a function, and
-- returns the hooks, name and defaults as a new table.
function _M.validate_policy(p)
  if type(p) ~= "table" then
    return nil, ("a policy must be a table of hooks, got %s"):format(type(p))
  end
  for k, v in pairs(p) do
    if HOOKS[k] then
      if type(v) ~= "function" then
        return nil, ("hook '%s' must be a function, got %s"):format(k, type(v))
      end
    elseif k ~= "name" and k ~= "description" and k ~= "defaults" then
      local guess = _M.suggest(k, HOOKS)
      return nil, ("unknown hook '%s'%s (hooks: died, init, migrate, restart, start, stop)"):format(tostring(k),
        guess and (", did you mean '" .. guess .. "'?") or "")
    end
  end
  if p.defaults ~= nil and type(p.defaults) ~= "table" then
    return nil, "`defaults` must be a table of options"
  end
  local out = {}
  for k, v in pairs(p) do out[k] = v end
  return out
end

-- The options a service file gives a policy ({ "graceful", deadline = 60 }),
-- checked against the policy's `defaults` and merged with them.
local function policy_options(p, given, name)
  local defaults = p.defaults or {}
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for k, v in pairs(given) do
    if defaults[k] == nil then
      local known = {}
      for dk in pairs(defaults) do known[#known + 1] = tostring(dk) end
      table.sort(known)
      local guess = _M.suggest(k, defaults)
      return nil, ("policy '%s' has no option '%s'%s (options: %s)"):format(name, tostring(k),
        guess and (", did you mean '" .. guess .. "'?") or "", #known > 0 and table.concat(known, ", ") or "none")
    end
    if type(v) ~= type(defaults[k]) and defaults[k] ~= false then
      return nil, ("policy '%s': option '%s' must be a %s"):format(name, k, type(defaults[k]))
    end
    -- `signal` is the drain signal (every built-in takes it): a name the
    -- drain could not send is refused now, not at the first restart.
    if k == "signal" and v and not require("baton.gen").signal_name(v) then
      return nil, ("policy '%s': option 'signal': %s is not a signal a drain can send (TERM, INT, " ..
        "QUIT, HUP, USR1, USR2, WINCH)"):format(name, text(v))
    end
    -- `max_memory` (every built-in): bytes, or a size such as "512M".
    if k == "max_memory" and v then
      local n = size_bytes(v)
      if not n or n <= 0 or n % 1 ~= 0 then
        return nil, ("policy '%s': option 'max_memory' must be a number of bytes or a size such as " ..
          "\"512M\", got %s"):format(name, text(v))
      end
      v = n
    end
    -- `start_limit` (every built-in): { burst = N, interval = T } or { N, T }.
    if k == "start_limit" and v then
      local burst = type(v) == "table" and (v.burst or v[1])
      local interval = type(v) == "table" and (v.interval or v[2])
      if type(burst) ~= "number" or burst < 1 or burst % 1 ~= 0 or type(interval) ~= "number" or interval <= 0 then
        return nil, ("policy '%s': option 'start_limit' must be { burst = N, interval = SECONDS } " ..
          "(give up after N crashes within SECONDS)"):format(name)
      end
      v = { burst = burst, interval = interval }
    end
    out[k] = v
  end
  return out
end

-- Runs a policy's source in a fresh sandbox (its own globals and its own
-- instances of the modules it requires) under the load budget, and checks
-- what it returns. NAME says where it came from in messages.
local function policy_from_source(src, chunkname, name)
  local p, err = sandbox.load(src, chunkname, "policy " .. name)
  if err then return nil, err end
  local ok, copied = pcall(plain, p, "policy " .. name)
  if not ok then return nil, type(copied) == "table" and copied.msg or text(copied) end
  local v, verr = _M.validate_policy(copied)
  if not v then return nil, ("%s: %s"):format(name, verr) end
  return v
end

-- SPEC: a built-in's name ("default"), a path to a Lua file (relative to
-- DIR), a table of hooks, or { NAME-or-PATH, option = value, ... }.
-- Built-ins come from the sources compiled into the binary (or, under
-- plain LuaJIT, the source tree): never from package.path. Each load is a
-- new instance. Returns policy, nil, name, options or nil, err.
function _M.load_policy(spec, dir)
  local ok, copied = pcall(plain, spec, "policy")
  if not ok then return nil, type(copied) == "table" and copied.msg or text(copied) end
  spec = copied
  if type(spec) == "table" and type(spec[1]) == "string" then
    local given = {}
    for k, v in pairs(spec) do if k ~= 1 then given[k] = v end end
    local p, err, name = _M.load_policy(spec[1], dir)
    if not p then return nil, err end
    local opts, oerr = policy_options(p, given, name)
    if not opts then return nil, oerr end
    return p, nil, name, opts
  end
  if type(spec) == "table" then
    local p, err = _M.validate_policy(spec)
    if not p then return nil, err end
    return p, nil, "inline", policy_options(p, {}, "inline")
  end
  if type(spec) ~= "string" then
    return nil, ("expected a built-in name, a file path or a table, got %s"):format(type(spec))
  end
  local p, err, name
  if spec:match("^[%w_]+$") then
    name = spec
    local src, chunkname = sandbox.source("baton.policies." .. spec)
    if not src then return nil, ("no built-in policy named '%s'"):format(spec) end
    p, err = policy_from_source(src, chunkname, name)
  else
    name = resolve(dir or ".", spec)
    local src, rerr = read_file(name)
    if not src then return nil, ("cannot read policy %s: %s"):format(name, rerr) end
    p, err = policy_from_source(src, "@" .. name, name)
  end
  if not p then return nil, err end
  return p, nil, name, policy_options(p, {}, name)
end

return _M
