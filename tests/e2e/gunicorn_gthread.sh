#!/usr/bin/env bash
# gunicorn (Debian's) with threaded keep-alive workers (-k gthread,
# --threads 4, --keep-alive 5) under keep-alive plus
# new-connection load, set up as docs/recipes.md says:
# - gunicorn takes its socket from LISTEN_FDS and says READY=1 itself;
# - the default policy: gunicorn exits by itself once its workers have
#   drained, so the drain ends by its exit. (graceful would stop it as soon
#   as the kernel shows it no connection, while its workers may still accept
#   for up to a second after SIGTERM: they look at their flag once per turn
#   of their loop);
# - the worker class is tests/apps/gthread_drain.py's, gthread's own with a
#   drain: at SIGTERM it stops accepting, answers the next request on each
#   connection with `Connection: close`, closes an idle one only at its
#   keep-alive timeout, and exits once it holds none. Stock gthread (20.1)
#   leaves its loop within a second of SIGTERM and exits, closing idle
#   keep-alive connections with the client's next request on the wire: the
#   request fails (WORKER=gthread runs it; this test then fails with ~90
#   resets in 15 restarts). --graceful-timeout (15) is above --keep-alive,
#   and drain_timeout above both;
# - 15 restarts: no failed request; every drain ended by the app's exit (or
#   idleness), none at its deadline; every old worker drained.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's, with Debian's packages
if ! "$PY" -c 'import gunicorn' 2> /dev/null; then
    echo "skip: gunicorn is not installed (scripts/deps.sh test)"
    exit 77
fi
RESTARTS=${RESTARTS:-15}
WORKER=${WORKER:-gthread_drain.DrainingThreadWorker}

cat > "$T/service.lua" <<LUA
return {
  name = "gthread-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$PY", "-m", "gunicorn", "--chdir", "$SOURCE_DIR/tests/apps",
              "--worker-class", "$WORKER", "--workers", "2", "--threads", "4",
              "--keep-alive", "5", "--graceful-timeout", "15", "hello_wsgi:app" },
  ready_timeout = 20,
  drain_timeout = 20,
  env = { PYTHONDONTWRITEBYTECODE = "1" }, -- no __pycache__ in tests/apps
  policy = "default",
}
LUA
start_baton
start_load

restarts "$RESTARTS" 0.3
stop_load
assert_no_load_errors 1000

drains_clean "$RESTARTS"

grep -q "Listening at: http://127.0.0.1:$PORT " "$T/sup.log" || fail "gunicorn did not take its socket from LISTEN_FDS"
grep -q "Using worker: $WORKER" "$T/sup.log" || fail "gunicorn did not use $WORKER"
if [ "$WORKER" = gthread_drain.DrainingThreadWorker ]; then
    n=$(grep -c "draining: [0-9]* connections open" "$T/sup.log" || true)
    [ "$n" -ge "$RESTARTS" ] || fail "only $n workers said they drain, in $RESTARTS restarts"
fi
assert_hooks_in_budget
stop_baton
echo "ok: gunicorn $WORKER, $RESTARTS restarts; $NDRAINS drains ($NIDLE ended by baton seeing no connection, the rest by the app's exit), slowest ${SLOWEST_MS} ms; $LOAD"
