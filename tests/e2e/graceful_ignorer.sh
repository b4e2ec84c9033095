#!/usr/bin/env bash
# `graceful` ends the drain of an app that ignores SIGTERM and keeps its
# listener, once it holds no connection, without racing an accept
# (steps.no_connections): stopped (SIGSTOP) when the kernel shows it no
# connection, then killed if a read of the kernel taken while it was
# stopped still shows none, else let go on (SIGCONT). Under a load of a
# new connection per request (which that app keeps accepting from the
# shared queue while it drains), RESTARTS restarts: each drain ends early
# as idle, well before its 60 s deadline, and not one request fails (a
# kill that raced an accept would show as a reset or an EOF).
. "$(dirname "$0")/lib.sh"
RESTARTS=${RESTARTS:-5}
APP="$SOURCE_DIR/tests/apps/term_ignorer.py"
cat > "$T/service.lua" <<LUA
return {
  name = "e2e-ignorer",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "python3", "$APP" },
  ready_timeout = 10,
  drain_timeout = 5, -- for the stop at the end
  policy = { "graceful", deadline = 60 },
}
LUA
start_baton
start_load --keepalive 0 --close 8
restarts "$RESTARTS" 0.5
drains_clean "$RESTARTS" 40
[ "$NIDLE" = "$RESTARTS" ] || fail "$NIDLE of $NDRAINS drains ended as idle: the others by the app's exit?"
stop_load
assert_no_load_errors 200
grep -q "is idle: ending its drain early" "$T/sup.log" || fail "no drain ended early"
stop_baton
echo "ok: $RESTARTS drains of an app that ignores SIGTERM ended as idle (median $MEDIAN_MS ms, slowest $SLOWEST_MS ms); $LOAD"
