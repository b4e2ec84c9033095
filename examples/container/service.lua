-- The container example's service (examples/container/rootfs.sh installs it
-- as /etc/baton/service.lua): the example server, on every address, port
-- 8080. HELLO_HOST and HELLO_PORT in the container's environment change the
-- address (the end-to-end test uses 127.0.0.1 and port 0, a free one).
-- The control socket is in /run/baton: bind-mount a folder there to drive
-- baton from the host, or use `podman exec CONTAINER baton restart`.
local host = os.getenv("HELLO_HOST") or "0.0.0.0"
local port = os.getenv("HELLO_PORT") or "8080"

return {
  name = "hello",
  control = "/run/baton/control.sock",
  listen = { http = "tcp://" .. host .. ":" .. port },
  command = { "/usr/bin/hello_server" },
  ready_timeout = 10,
  -- Under the 10 s podman and docker give a container to stop before SIGKILL.
  drain_timeout = 8,
  policy = "default",
}
