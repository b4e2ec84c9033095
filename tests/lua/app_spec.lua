-- The LuaJIT FFI binding of libbaton, against the real libbaton.so
-- (ctest sets BATON_LIBBATON to the one it built).
local found, app = pcall(require, "baton.app")

-- A state blob made by libbaton itself (its internal writer is exported).
local function lib_blob(ffi, text, schema)
  local lib = ffi.load(os.getenv("BATON_LIBBATON") or "baton")
  return lib.state_blob_create(text, #text, schema, 9)
end

describe("baton.app", function()
  if not found then
    pending("libbaton.so not found: build it and set BATON_LIBBATON (ctest does): " .. tostring(app))
    return
  end
  it("works outside baton, with a private region", function()
    local stats, private = app.stats()
    assert.truthy(stats)
    assert.is_true(private)
    assert.equal(0, app.listen_fds())
    assert.equal(0, app.generation())
  end)

  it("counts, gauges and observes", function()
    local stats = app.stats()
    local c = assert(stats:counter("spec.requests"))
    for _ = 1, 1000 do c:add(1) end
    c:add(5)
    assert.equal(1005, c:value())
    local again = assert(stats:counter("spec.requests"))
    again:add(1)
    assert.equal(1006, c:value()) -- same slot
    local g = assert(stats:gauge("spec.conns"))
    g:add(3); g:add(-1)
    assert.equal(2, g:value())
    g:set(7)
    assert.equal(7, g:value())
    local h = assert(stats:histogram("spec.latency", { 0.1, 1 }))
    h:observe(0.05); h:observe(0.5); h:observe(5)
    assert.same({ 1, 1, 1 }, { h:value(0), h:value(1), h:value(2) })
  end)

  it("returns clear errors", function()
    local stats = app.stats()
    assert(stats:counter("spec.clash"))
    local m, err = stats:gauge("spec.clash")
    assert.is_nil(m)
    assert.matches("another type", err)
    m, err = stats:counter("bad name")
    assert.is_nil(m)
    assert.matches("invalid name", err)
    m, err = stats:counter(("x"):rep(120))
    assert.is_nil(m)
    assert.matches("longer than 95", err)
    m, err = stats:histogram("spec.h", { 2, 1 })
    assert.is_nil(m)
    assert.matches("or bounds", err) -- bounds not increasing
    m, err = stats:histogram("spec.h", {})
    assert.is_nil(m)
    assert.matches("bounds must be", err)
    local c = assert(stats:counter("spec.up"))
    assert.has_error(function() c:add(-1) end, "a counter only goes up")
    assert.has_error(function() c:set(1) end, "set() is for gauges")
  end)

  it("says when there is no socket to notify", function()
    assert.equal(false, app.notify("READY=1"))
    local fd, err = app.listener("http")
    assert.is_nil(fd)
    assert.matches("No such file", err)
  end)

  it("stores state with the supervisor and says when there is none", function()
    assert.equal(false, app.state_save("x", 1)) -- no NOTIFY_SOCKET here
    local blob, why = app.state_load()
    assert.is_nil(blob)
    assert.equal("none", why)
    assert.same({}, app.fds("conn"))
  end)

  it("loads the state blob a generation receives, and refuses a broken one", function()
    -- The blob as a supervisor hands it on: a sealed memfd, named "state" in
    -- LISTEN_FDNAMES. (Saving over a real notify socket is unit_state_blob's.)
    local ffi = require("ffi")
    ffi.cdef[[
      int state_blob_create(const void *data, size_t len, uint32_t schema, uint32_t generation);
      int memfd_create(const char *, unsigned);
      long write(int, const void *, size_t);
      int dup2(int, int);
      int close(int);
      int getpid(void);
      int setenv(const char *, const char *, int);
      int unsetenv(const char *);
    ]]
    local fd = lib_blob(ffi, "sessions: 3", 4)
    assert.equal(3, ffi.C.dup2(fd, 3))
    ffi.C.close(fd)
    ffi.C.setenv("LISTEN_PID", tostring(ffi.C.getpid()), 1)
    ffi.C.setenv("LISTEN_FDS", "1", 1)
    ffi.C.setenv("LISTEN_FDNAMES", "state", 1)
    local blob, schema, gen = app.state_load()
    assert.equal("sessions: 3", blob)
    assert.equal(4, schema)
    assert.equal(9, gen)
    -- Not sealed: refused by the app's side as well.
    local raw = ffi.C.memfd_create("raw", 1)
    ffi.C.write(raw, "plain bytes", 11)
    ffi.C.dup2(raw, 3)
    ffi.C.close(raw)
    local none, why = app.state_load()
    assert.is_nil(none)
    assert.matches("not permitted", why) -- EPERM: not a sealed memfd
    for _, k in ipairs{ "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES" } do ffi.C.unsetenv(k) end
    ffi.C.close(3)
  end)
end)
