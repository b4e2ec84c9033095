-- A service with state: the counter server under the handover policy.
-- Its hit counters survive every restart (docs/state.md):
--   baton run examples/counter/service.lua
--   curl 127.0.0.1:8081/hello; baton -s /tmp/baton-counter.sock restart
--   curl 127.0.0.1:8081/_count     # still there, in the new generation
local port = os.getenv("COUNTER_PORT") or "8081"

return {
  name = "counter",
  control = os.getenv("COUNTER_CONTROL") or "/tmp/baton-counter.sock",
  listen = { http = "tcp://127.0.0.1:" .. port },
  command = { os.getenv("COUNTER_SERVER") or "build/examples/counter_server" },
  state = { version = 1, max_size = "64M" },
  policy = "handover",
}
