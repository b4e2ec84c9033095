return { command = { "app" }, listen = { web = "tcp://127.0.0.1:0" },
  policy = { restart = function(svc, old) return nil, "no" end } }
