-- baton.app: libbaton for LuaJIT apps (OpenResty, plain LuaJIT), through
-- the FFI. The same API as include/baton.h:
--
--   local app = require("baton.app")
--   local fd = app.listener("http")           -- or app.listen_fds() and fd 3
--   app.notify("READY=1")
--   local stats = assert(app.stats())
--   local requests = assert(stats:counter("http.requests"))
--   requests:add(1)                            -- one relaxed atomic, in C
--   local conns = assert(stats:gauge("http.connections"))
--   conns:add(1); conns:add(-1); conns:set(0)
--   local lat = assert(stats:histogram("http.latency_seconds", { 0.01, 0.1, 1 }))
--   lat:observe(0.042)
--   app.state_save(blob, 1)                    -- hand your state on (schema 1)
--   local blob, schema = app.state_load()      -- in the next generation
--
-- Errors are returned as nil, message. libbaton.so is found by the dynamic
-- loader, or at $BATON_LIBBATON.

local ffi = require("ffi")

ffi.cdef[[
int baton_listen_fds(void);
int baton_listener(const char *name);
int baton_notify(const char *state);
unsigned baton_generation(void);

struct baton_stats;
typedef struct baton_metric {
  uint64_t *slot;
  const double *bounds;
  unsigned nbuckets;
  int type;
} baton_metric;

int baton_stats_open(struct baton_stats **out);
void baton_stats_close(struct baton_stats *s);
int baton_counter(struct baton_stats *s, const char *name, baton_metric *m);
int baton_gauge(struct baton_stats *s, const char *name, baton_metric *m);
int baton_histogram(struct baton_stats *s, const char *name, const double *bounds,
                    unsigned n, baton_metric *m);
void baton_observe(const baton_metric *m, double value);
void baton_metric_add(const baton_metric *m, uint64_t n);
void baton_metric_gauge_add(const baton_metric *m, int64_t delta);
void baton_metric_set(const baton_metric *m, int64_t value);
double baton_drain_progress(struct baton_stats *s);

struct baton_state {
  const void *data;
  size_t len;
  uint32_t schema;
  unsigned generation;
  const void *map_;
  size_t map_len_;
};
int baton_state_save(const void *buf, size_t len, uint32_t schema);
int baton_state_load(struct baton_state *st);
void baton_state_release(struct baton_state *st);
int baton_fd_store(const char *name, const int *fds, size_t n, int poll);
int baton_fd_remove(const char *name);
int baton_fds(const char *name, int *fds, int max);
char *strerror(int errnum);
]]

local C = ffi.C
local lib = ffi.load(os.getenv("BATON_LIBBATON") or "baton")

local _M = {}

local COUNTER, GAUGE, HISTOGRAM = 1, 2, 3

-- Messages for what libbaton returns, in its terms.
local MESSAGES = {
  [17] = "already registered with another type or other bounds", -- EEXIST
  [28] = "the stats region is full (raise stats_capacity)",      -- ENOSPC
  [36] = "name longer than 95 characters",                        -- ENAMETOOLONG
  [22] = "invalid name (1-95 of A-Z a-z 0-9 _ . : -) or bounds",  -- EINVAL
  [71] = "the stats region has another layout version",           -- EPROTO
}

local function err(rc)
  return nil, MESSAGES[-rc] or ffi.string(C.strerror(-rc))
end

function _M.listen_fds() return tonumber(lib.baton_listen_fds()) end

function _M.listener(name)
  local fd = lib.baton_listener(name)
  if fd < 0 then return err(fd) end
  return fd
end

function _M.notify(state)
  local rc = lib.baton_notify(state)
  if rc < 0 then return err(rc) end
  return rc == 1
end

function _M.generation() return tonumber(lib.baton_generation()) end

-- State --------------------------------------------------------------------------

-- Stores BLOB (a string) as this generation's state, schema SCHEMA. Returns
-- true when stored, false when there is no supervisor, or nil, message.
function _M.state_save(blob, schema)
  local rc = lib.baton_state_save(blob, #blob, schema or 1)
  if rc < 0 then return err(rc) end
  return rc == 1
end

-- The state this generation received: blob, schema, generation that saved
-- it; or nil, "none"; or nil and what is wrong with it. A copy into a Lua
-- string: the mapping is released before it returns.
function _M.state_load()
  local st = ffi.new("struct baton_state")
  local rc = lib.baton_state_load(st)
  if rc == -2 then return nil, "none" end -- ENOENT: this generation received no state
  if rc < 0 then return err(rc) end
  local blob = ffi.string(st.data, st.len)
  local schema, gen = tonumber(st.schema), tonumber(st.generation)
  lib.baton_state_release(st)
  return blob, schema, gen
end

-- The fd store, for other fds: store FDS (a list) under NAME; remove them;
-- list the fds of NAME this process received.
function _M.fd_store(name, fds, poll)
  local a = ffi.new("int[?]", #fds, fds)
  local rc = lib.baton_fd_store(name, a, #fds, poll == false and 0 or 1)
  if rc < 0 then return err(rc) end
  return rc == 1
end

function _M.fd_remove(name)
  local rc = lib.baton_fd_remove(name)
  if rc < 0 then return err(rc) end
  return rc == 1
end

function _M.fds(name)
  local a = ffi.new("int[256]")
  local n = lib.baton_fds(name, a, 256)
  local out = {}
  for i = 0, n - 1 do out[#out + 1] = a[i] end
  return out
end

-- Metrics ----------------------------------------------------------------------

local Metric = {}
Metric.__index = Metric

function Metric:add(n)
  if self.type == GAUGE then
    lib.baton_metric_gauge_add(self, n or 1)
  elseif self.type == COUNTER then
    if n and n < 0 then error("a counter only goes up", 2) end
    lib.baton_metric_add(self, n or 1)
  else
    error("add() on a histogram: use observe()", 2)
  end
end

function Metric:set(v)
  if self.type ~= GAUGE then error("set() is for gauges", 2) end
  lib.baton_metric_set(self, v)
end

function Metric:observe(v)
  if self.type ~= HISTOGRAM then error("observe() is for histograms", 2) end
  lib.baton_observe(self, v)
end

-- This process's own figure (its generation's lane), for tests and debugging.
function Metric:value(slot)
  return tonumber(self.slot[slot or 0])
end

local metric_t = ffi.metatype("baton_metric", Metric)

local Stats = {}
Stats.__index = Stats

local function registered(m, rc)
  if rc < 0 then return err(rc) end
  return m
end

function Stats:counter(name)
  local m = metric_t()
  return registered(m, lib.baton_counter(self.handle, name, m))
end

function Stats:gauge(name)
  local m = metric_t()
  return registered(m, lib.baton_gauge(self.handle, name, m))
end

function Stats:histogram(name, bounds)
  if type(bounds) ~= "table" or #bounds == 0 or #bounds > 15 then
    return nil, "bounds must be a list of 1 to 15 ascending numbers"
  end
  local m = metric_t()
  local b = ffi.new("double[?]", #bounds, bounds)
  return registered(m, lib.baton_histogram(self.handle, name, b, #bounds, m))
end

-- 0 while this generation serves normally; 0 to 1 across a gradual drain.
function Stats:drain_progress()
  return tonumber(lib.baton_drain_progress(self.handle))
end

local stats -- one mapping per process

-- The service's stats region. The second result is true when the process is
-- not under baton and a private region stands in (the figures go nowhere).
function _M.stats()
  if stats then return stats, stats.private end
  local out = ffi.new("struct baton_stats *[1]")
  local rc = lib.baton_stats_open(out)
  if rc < 0 then return err(rc) end
  stats = setmetatable({ handle = ffi.gc(out[0], lib.baton_stats_close), private = rc == 1 }, Stats)
  return stats, stats.private
end

return _M
