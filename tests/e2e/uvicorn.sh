#!/usr/bin/env bash
# uvicorn (Debian's python3-uvicorn, 0.17) serving a tiny ASGI app
# (tests/apps/asgi_hello.py) from the listener baton passes as fd 3
# (`--fd 3`), under the graceful policy and keep-alive plus new-connection
# load, set up as docs/recipes.md says:
# - readiness: the app writes READY=1 to $NOTIFY_SOCKET from its lifespan
#   startup (uvicorn takes one fd, so no per-generation health listener; a
#   probe of the shared port may be answered by the old generation);
# - uvicorn runs through tests/apps/uvicorn_drain.py: its own command line,
#   with a shutdown that stops accepting at SIGTERM and closes no connection
#   itself (each one's next response says `Connection: close`; an idle one
#   closes at --timeout-keep-alive). Stock uvicorn 0.17 closes its idle
#   keep-alive connections at SIGTERM, requests on the wire and all: every
#   keep-alive connection of the load loses one request a restart
#   (UVICORN=stock runs `python3 -m uvicorn` instead, and this test fails
#   with eof=120). It also accepts until its next 0.1 s tick after SIGTERM,
#   and graceful, which stops a generation the moment the kernel shows it
#   no connection, loses what it accepts meanwhile; stopping at once at
#   SIGTERM is what makes graceful safe here;
# - 15 restarts: no failed request; every drain ended by idleness or the
#   app's exit, none at its deadline; the serving generation answers.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's, with Debian's packages
if ! "$PY" -c 'import uvicorn, h11' 2> /dev/null; then
    echo "skip: python3-uvicorn is not installed (scripts/deps.sh test)"
    exit 77
fi
RESTARTS=${RESTARTS:-15}
APPS=$SOURCE_DIR/tests/apps
if [ "${UVICORN:-}" = stock ]; then
    run='"-m", "uvicorn"'
else
    run="\"$APPS/uvicorn_drain.py\""
fi

cat > "$T/service.lua" <<LUA
return {
  name = "uvicorn-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$PY", $run, "--fd", "3", "--app-dir", "$APPS",
              "--http", "h11", "--loop", "asyncio", "--timeout-keep-alive", "5",
              "--no-access-log", "asgi_hello:app" },
  ready_timeout = 10,
  drain_timeout = 20,
  env = { PYTHONDONTWRITEBYTECODE = "1" }, -- no __pycache__ in tests/apps
  policy = "graceful",
}
LUA
start_baton
start_load

restarts "$RESTARTS" 0.3
stop_load
assert_no_load_errors 1000

drains_clean "$RESTARTS"

grep -q "Uvicorn running on socket ('127.0.0.1', $PORT)" "$T/sup.log" || fail "uvicorn did not serve fd 3"
pid=$("$BATON" status -s "$SOCK" --json | "$PY" -c '
import json, sys
print([g for g in json.load(sys.stdin)["generations"] if g["state"] == "active"][0]["pid"])')
body=$(curl -sf "http://127.0.0.1:$PORT/") || fail "no answer from the serving generation"
[ "$body" = "hello from uvicorn, pid $pid" ] || fail "answered by another process than the serving generation ($pid): $body"
assert_hooks_in_budget
stop_baton
echo "ok: uvicorn --fd 3, $RESTARTS restarts; $NDRAINS drains ($NIDLE ended by baton seeing no connection, the rest by the app's exit), slowest ${SLOWEST_MS} ms; $LOAD"
