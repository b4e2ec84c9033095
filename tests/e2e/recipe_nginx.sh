#!/usr/bin/env bash
# The nginx recipe (docs/recipes.md): nginx takes baton's listener through
# NGINX="3;", drains on QUIT (policy graceful, signal = "QUIT"), and is
# probed on a health port of each generation's own. 10 restarts under load:
# no connect error, each drain ended by nginx's own exit (none at the
# deadline, none flagged as ignoring its signal). Then `baton drill`'s
# verdict with keep-alive off (keepalive_timeout 0): PASS. (With keep-alive
# on, nginx's graceful shutdown closes idle keep-alive connections: the
# race of RFC 9112 section 9.6, which drill names.) Skipped without nginx.
. "$(dirname "$0")/lib.sh"
command -v nginx > /dev/null || { echo "skip: nginx is not installed"; exit 77; }
: "${SOURCE_DIR:?}"

low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
BASE=$((10000 + RANDOM % (low - 10100)))
P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$T/nginx"
service() { # service KEEPALIVE
    cat > "$T/service.lua" <<LUA
return {
  name = "nginx",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:$P" },
  command = { "python3", "$SOURCE_DIR/tests/apps/nginx_baton.py", "$P", "$BASE", "$T/nginx" },
  env = { KEEPALIVE = "$1" },
  ready_timeout = 10,
  drain_timeout = 20,
  policy = { "graceful", signal = "QUIT",
             ready = { notify = false, http = "http://127.0.0.1:{generation+$BASE}/" } },
}
LUA
}
service 75s
start_baton
curl -sf "http://127.0.0.1:$P/" | grep -q "hello from nginx" || fail "nginx does not answer"
recipe_restarts exit
grep -q "draining (SIGQUIT" "$T/sup.log" || fail "no drain sent QUIT"
if grep -q "does it drain on" "$T/sup.log"; then fail "a drain was flagged: $(grep -m1 'does it drain' "$T/sup.log")"; fi
echo "ok: 10 restarts of nginx under load, connect_errors=0, each drain ended by nginx's exit; $LOAD"

service 0
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload refused"
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart with keep-alive off"
timeout 150 "$BATON" drill -s "$SOCK" -n 10 > "$T/drill.out" 2>&1 || fail "drill: $(tail -8 "$T/drill.out")"
grep "^verdict:" "$T/drill.out"
grep -q "^verdict: PASS" "$T/drill.out" || fail "drill: $(tail -8 "$T/drill.out")"
stop_baton
