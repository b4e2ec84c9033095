#!/usr/bin/env bash
# The uwsgi recipe (docs/recipes.md): uwsgi takes baton's listener as
# `--http11-socket fd://3` and says READY=1 itself. uwsgi 2.0 takes TERM as
# a reload: without --die-on-term the old generation serves on, and the
# supervisor names it a second after its signal ("does it drain on
# TERM?"); with --die-on-term, 10 restarts under load: no connect error,
# each drain ended by uwsgi's exit. Skipped without uwsgi's python3 plugin.
. "$(dirname "$0")/lib.sh"
command -v uwsgi_python3 > /dev/null || { echo "skip: uwsgi_python3 is not installed"; exit 77; }
: "${SOURCE_DIR:?}"

P=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
service() { # service EXTRA-ARGS-LUA
    cat > "$T/service.lua" <<LUA
return {
  name = "uwsgi",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:$P" },
  command = { "uwsgi_python3", "--http11-socket", "fd://3", "--wsgi-file",
              "$SOURCE_DIR/tests/apps/hello_wsgi.py", "--callable", "app", "--master",
              "--processes", "2" $1 },
  ready_timeout = 10,
  drain_timeout = 4,
  policy = "graceful",
}
LUA
}
service ""
start_baton
curl -sf "http://127.0.0.1:$P/" > /dev/null || fail "uwsgi does not answer"
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart"
wait_for 5 grep -q "generation 1 (pid [0-9]*) is still listening 1s after SIGTERM: does it drain on TERM?" "$T/sup.log" ||
    fail "uwsgi reloading on TERM was not flagged"
echo "ok: $(grep -o 'generation 1 (pid [0-9]*) is still listening.*' "$T/sup.log" | head -1)"
stop_baton

service ', "--die-on-term"'
start_baton
recipe_restarts exit
echo "ok: 10 restarts of uwsgi --die-on-term under load, connect_errors=0, each drain ended by its exit; $LOAD"
stop_baton
