-- The demo service: the example HTTP server under the default policy.
-- Run it with `baton run examples/hello/service.lua`, then `baton restart`.
local port = os.getenv("HELLO_PORT") or "8080"

return {
  name = "hello",
  control = os.getenv("BATON_DEMO_CONTROL") or "/tmp/baton-hello.sock",
  listen = { http = "tcp://127.0.0.1:" .. port },
  command = { os.getenv("HELLO_SERVER") or "build/examples/hello_server" },
  ready_timeout = 10,
  drain_timeout = 30,
  policy = "default",
}
