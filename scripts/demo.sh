#!/usr/bin/env bash
# The demo: the example HTTP server under baton's default policy, a load
# client hammering it, and restarts happening while it does. Installs and
# builds what is missing first.
#   scripts/demo.sh            (PORT=8080 RESTARTS=10 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8080}
RESTARTS=${RESTARTS:-10}

echo "== installing what is missing (Debian packages), then building baton, the example server and the load client"
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF > /dev/null
cmake --build build -j"$(nproc)" --target baton hello_server loadgen > /dev/null

export BATON_DEMO_CONTROL=/tmp/baton-demo-$$.sock HELLO_PORT=$PORT
export HELLO_SERVER=$PWD/build/examples/hello_server
BATON=build/baton
LOG=/tmp/baton-demo-$$.log
"$BATON" run examples/hello/service.lua > "$LOG" 2>&1 &
BPID=$!
LPID=""
# Ends only what the demo started, by pid; a pid already gone (or never
# started) is not an error: a clean run exits 0.
cleanup() {
    local p
    for p in $LPID $BPID; do kill "$p" 2>/dev/null || true; done
    rm -f "$LOG"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    "$BATON" status -s "$BATON_DEMO_CONTROL" > /dev/null 2>&1 && break
    kill -0 "$BPID" 2>/dev/null || { cat "$LOG"; exit 1; }
    sleep 0.1
done

echo "== baton supervises the example server on 127.0.0.1:$PORT"
"$BATON" status -s "$BATON_DEMO_CONTROL"
echo
echo "== load: 8 keep-alive + 8 new-connection clients; $RESTARTS restarts while it runs"
build/bench/loadgen --port "$PORT" --keepalive 8 --close 8 --duration 120 --timeline > /tmp/baton-demo-load.$$ &
LPID=$!
sleep 1
for i in $(seq 1 "$RESTARTS"); do
    printf 'restart %2d: ' "$i"
    "$BATON" restart -s "$BATON_DEMO_CONTROL"
    sleep 0.5
done
sleep 0.5
kill -INT "$LPID"
wait "$LPID"
LPID=""
echo
echo "== requests per second during the restarts (errors should stay 0)"
grep '^t=' /tmp/baton-demo-load.$$ | sed 's/ epoch_ms=[0-9]*//'
echo
echo "== the load client's verdict"
verdict=$(grep '^loadgen:' /tmp/baton-demo-load.$$)
echo "$verdict"
rm -f /tmp/baton-demo-load.$$
went_well=1
for f in non2xx connect_errors resets eof timeouts; do
    echo "$verdict" | grep -q " $f=0\b" || went_well=0
done
echo
"$BATON" status -s "$BATON_DEMO_CONTROL"
echo
echo "== baton stop: drain, then exit"
"$BATON" stop -s "$BATON_DEMO_CONTROL"
wait "$BPID"
BPID=""
if [ "$went_well" = 1 ]; then
    echo "== no request failed across $RESTARTS restarts"
else
    echo "== some requests failed (see the verdict above)" >&2
    exit 1
fi
