return { command = { "app" } }
