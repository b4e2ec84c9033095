#!/usr/bin/env bash
# An unmodified systemd-style app (gunicorn, from Debian) under baton: it
# takes its socket from LISTEN_FDS and says READY=1 itself. 30 restarts under
# load, zero failures.
. "$(dirname "$0")/lib.sh"
command -v gunicorn >/dev/null || fail "gunicorn is not installed (scripts/deps.sh test)"
RESTARTS=${RESTARTS:-30}

cat > "$T/service.lua" <<LUA
return {
  name = "gunicorn-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "gunicorn", "--workers", "2", "--graceful-timeout", "10",
              "--chdir", "$SOURCE_DIR/tests/apps", "hello_wsgi:app" },
  ready_timeout = 20,
  drain_timeout = 15,
}
LUA
start_baton
start_load

restarts "$RESTARTS" 0.2

stop_load
assert_no_load_errors 300
grep -q "Listening at: http://127.0.0.1:$PORT " "$T/sup.log" ||
    fail "gunicorn did not take its socket from LISTEN_FDS"
stop_baton
echo "ok: gunicorn, $RESTARTS restarts, $LOAD"
