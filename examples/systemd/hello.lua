-- The example service under systemd: the socket unit (hello.socket) binds
-- the port and passes it as "http"; baton uses it instead of binding.
return {
  name = "hello",
  control = "/run/baton/hello.sock",
  listen = { http = "tcp://127.0.0.1:8080" },
  command = { "/usr/local/bin/hello_server" },
  ready_timeout = 10,
  drain_timeout = 30,
}
