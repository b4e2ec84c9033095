return {
  name = "web",
  listen = { { "http", "tcp://127.0.0.1:8080" }, { "admin", "unix:/tmp/a.sock", backlog = 8 } },
  command = { "app", "--port", 8080 },
  env = { A = "1" },
  ready_timeout = 5, drain_timeout = 30,
  state = { version = 2, max_size = "64M" },
  policy = { "graceful", deadline = 60 },
  policy_limits = { instructions = 1000000 },
}
