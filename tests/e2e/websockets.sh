#!/usr/bin/env bash
# A python3-websockets echo server (Debian's package, tests/apps/ws_echo.py,
# set up as docs/recipes.md says) under the graceful policy, with 200
# WebSocket connections from a real client (tests/apps/ws_clients.py), each
# sending a message every ~100 ms and checking its echo:
# - the server serves fd 3 (`websockets.serve(..., sock=socket.socket(fileno=3))`)
#   and says READY=1 on $NOTIFY_SOCKET: that is its readiness;
# - at SIGTERM it stops accepting and closes each connection with 1001
#   (going away) right after its next echo; the client reconnects, to the
#   new generation;
# - 15 restarts, each once the serving generation holds all 200: no lost
#   message, no abnormal close, no failed or rejected handshake, no echo
#   missing or wrong; every connection moved at every restart; every drain
#   ended by idleness or the app's exit, none at its deadline. `resent` (a
#   message sent while the server's Close was on its way, sent again on
#   the next connection) is reported: 0 unless the client is starved of CPU
#   for QUIET (2 s).
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's, with Debian's packages
if ! "$PY" -c 'import websockets' 2> /dev/null; then
    echo "skip: python3-websockets is not installed (scripts/deps.sh test)"
    exit 77
fi
RESTARTS=${RESTARTS:-15}
CONNS=${CONNS:-200}

cat > "$T/service.lua" <<LUA
return {
  name = "websockets-e2e",
  control = "$SOCK",
  listen = { ws = "tcp://127.0.0.1:0" },
  command = { "$PY", "$SOURCE_DIR/tests/apps/ws_echo.py" },
  ready_timeout = 10,
  drain_timeout = 20,
  env = { PYTHONDONTWRITEBYTECODE = "1" }, -- no __pycache__ in tests/apps
  policy = "graceful",
}
LUA
start_baton

# The client runs in LPID, which lib.sh's cleanup kills.
"$PY" "$SOURCE_DIR/tests/apps/ws_clients.py" "ws://127.0.0.1:$PORT/" --conns "$CONNS" \
    --ready "$T/clients_ready" > "$T/clients.out" 2> "$T/clients.err" &
LPID=$!
wait_for 30 test -e "$T/clients_ready" ||
    fail "the $CONNS WebSocket clients did not connect: $(tail -5 "$T/clients.err")"
sleep 1

# The serving generation's connections, from the kernel (baton status).
active_holds_all() { "$BATON" status -s "$SOCK" --json | "$PY" -c '
import json, sys
g = [g for g in json.load(sys.stdin)["generations"] if g["state"] == "active"][0]
sys.exit(0 if g["connections"] >= int(sys.argv[1]) else 1)' "$CONNS"; }
for i in $(seq 1 "$RESTARTS"); do
    wait_for 30 active_holds_all || fail "before restart $i: the serving generation does not hold the $CONNS connections"
    out=$("$BATON" restart -s "$SOCK" --json) || fail "restart $i: $out"
done
wait_for 30 active_holds_all || fail "after the restarts: the serving generation does not hold the $CONNS connections"
sleep 1
kill -INT "$LPID"
rc=0
wait "$LPID" || rc=$?
LPID=""
WS=$(grep '^wsclients:' "$T/clients.out") || fail "no summary from the client (exit $rc): $(tail -5 "$T/clients.err")"
[ $rc -eq 0 ] || fail "the client exited with $rc: $WS"
ws_field() { echo "$WS" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
for f in lost abnormal connect_errors rejected timeouts wrong; do
    [ "$(ws_field $f)" = 0 ] || fail "the WebSocket clients saw $f=$(ws_field $f): $WS; $(sort "$T/clients.err" | uniq -c | head -5)"
done
[ "$(ws_field messages)" -gt $((RESTARTS * CONNS)) ] || fail "too few echoes: $WS"
# Every restart sent every connection away (1001) to the next generation.
[ "$(ws_field going_away)" -ge $((RESTARTS * CONNS)) ] ||
    fail "fewer going-away closes than $RESTARTS restarts of $CONNS connections: $WS"

drains_clean "$RESTARTS"
assert_hooks_in_budget
stop_baton
echo "ok: websockets, $CONNS connections, $RESTARTS restarts; $NDRAINS drains ($NIDLE ended by baton seeing no connection, the rest by the app's exit), slowest ${SLOWEST_MS} ms; $WS"
