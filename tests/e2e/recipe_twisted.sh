#!/usr/bin/env bash
# The Twisted recipe (docs/recipes.md): `twistd web` takes baton's sockets
# through its `systemd:` endpoint (index 0: the shared listener; index 1:
# the per_generation one, probed: Twisted sends no READY=1), and stops on
# TERM. 10 restarts under load: no connect error, no drain at its
# deadline. Skipped without Debian's python3-twisted.
. "$(dirname "$0")/lib.sh"
[ -x /usr/bin/twistd3 ] || { echo "skip: python3-twisted (twistd3) is not installed"; exit 77; }

mkdir -p "$T/www"
echo "hello from twisted" > "$T/www/index.html"
cat > "$T/service.lua" <<LUA
return {
  name = "twisted",
  control = "$SOCK",
  listen = { { "http", "tcp://127.0.0.1:0" }, { "health", "tcp://127.0.0.1:0", per_generation = true } },
  command = { "/usr/bin/twistd3", "--nodaemon", "--pidfile=", "web",
              "--listen", "systemd:domain=INET:index=0", "--listen", "systemd:domain=INET:index=1",
              "--path", "$T/www" },
  cwd = "$T",
  ready_timeout = 15,
  drain_timeout = 10,
  policy = { "graceful", ready = { notify = false, http = "http://127.0.0.1:{port:health}/" } },
}
LUA
start_baton
curl -sf "http://127.0.0.1:$PORT/" | grep -q "hello from twisted" || fail "twistd does not answer"
recipe_restarts no-deadline
echo "ok: 10 restarts of twistd web under load, connect_errors=0, no drain at its deadline; $LOAD"
stop_baton
