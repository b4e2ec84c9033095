#!/usr/bin/env bash
# The lighttpd recipe (docs/recipes.md): lighttpd takes baton's sockets by
# systemd socket activation (server.systemd-socket-activation), serves the
# per_generation "health" socket too (probed: lighttpd sends no READY=1),
# and drains on INT (policy graceful, signal = "INT"). 10 restarts under
# load: no connect error, no drain at its deadline nor flagged as ignoring
# its signal. Then `baton drill`'s verdict with keep-alive off
# (server.max-keep-alive-requests = 0): PASS. Skipped without lighttpd.
. "$(dirname "$0")/lib.sh"
command -v lighttpd > /dev/null || { echo "skip: lighttpd is not installed"; exit 77; }

P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/www"
echo "hello from lighttpd" > "$T/www/index.html"
config() { # config KEEPALIVE_REQUESTS
    cat > "$T/lighttpd.conf" <<CONF
server.document-root = "$T/www"
server.bind = "127.0.0.1"
server.port = $P
server.systemd-socket-activation = "enable"
server.errorlog = "/dev/stderr"
server.upload-dirs = ( "$T" )
server.max-keep-alive-requests = $1
index-file.names = ( "index.html" )
CONF
}
config 100
cat > "$T/service.lua" <<LUA
return {
  name = "lighttpd",
  control = "$SOCK",
  listen = { { "http", "tcp://127.0.0.1:$P" }, { "health", "tcp://127.0.0.1:0", per_generation = true } },
  command = { "lighttpd", "-D", "-f", "$T/lighttpd.conf" },
  ready_timeout = 10,
  drain_timeout = 20,
  policy = { "graceful", signal = "INT", ready = { notify = false, http = "http://127.0.0.1:{port:health}/" } },
}
LUA
start_baton
PORT=$P
curl -sf "http://127.0.0.1:$P/" | grep -q "hello from lighttpd" || fail "lighttpd does not answer"
# `baton status` marks the per_generation listener and shows each
# generation's own port, which answers.
hport=$(status_field 'generations[state=active].ports.health') || fail "no health port in status --json"
curl -sf "http://127.0.0.1:$hport/" | grep -q "hello from lighttpd" || fail "the health port $hport does not answer"
"$BATON" status -s "$SOCK" | grep -q "listener health .*tcp://127.0.0.1:0 (fd 4), per_generation" ||
    fail "status does not mark the per_generation listener: $("$BATON" status -s "$SOCK")"
"$BATON" status -s "$SOCK" | grep -q "\[health: port $hport\]" || fail "status does not show the port: $("$BATON" status -s "$SOCK")"
echo "ok: status shows the per_generation listener and generation 1's port $hport"
recipe_restarts no-deadline
grep -q "draining (SIGINT" "$T/sup.log" || fail "no drain sent INT"
if grep -q "does it drain on" "$T/sup.log"; then fail "a drain was flagged: $(grep -m1 'does it drain' "$T/sup.log")"; fi
echo "ok: 10 restarts of lighttpd under load, connect_errors=0, no drain at its deadline; $LOAD"

config 0 # keep-alive off: read by each new generation
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart with keep-alive off"
timeout 150 "$BATON" drill -s "$SOCK" -n 10 > "$T/drill.out" 2>&1 || fail "drill: $(tail -8 "$T/drill.out")"
grep "^verdict:" "$T/drill.out"
grep -q "^verdict: PASS" "$T/drill.out" || fail "drill: $(tail -8 "$T/drill.out")"
stop_baton
