#!/usr/bin/env bash
# A grpc-go server (tests/apps/go/grpc_server, set up as docs/recipes.md
# says: go-systemd's activation for its listener, READY=1 through go-systemd's
# daemon.SdNotify, GracefulStop on SIGTERM) under the graceful policy, built
# in GOPATH mode from Debian's golang-*-dev packages (no module download).
# A python3-grpcio client (tests/apps/grpc_client.py, Debian's python) keeps
# 16 server-streaming calls of 40 messages 50 ms apart (2 s each) going
# through 15 restarts:
# - no failed stream: every one gets all its messages, in order;
# - every old generation's drain ends by idleness (baton sees no connection)
#   or by the app's exit once GracefulStop returned; none at its deadline.
if ! command -v go > /dev/null; then
    echo "SKIP: go is not installed (golang-go)"
    exit 77
fi
. "$(dirname "$0")/lib.sh"
RESTARTS=${RESTARTS:-15}
PY=/usr/bin/python3
"$PY" -c 'import grpc' 2> /dev/null || fail "Debian's python3-grpcio is not installed"

# GOPATH mode: imports come from Debian's /usr/share/gocode, nothing is
# downloaded; the build cache lives and dies with $T.
export GO111MODULE=off GOFLAGS="" GOPROXY=off GOCACHE="$T/gocache" GOPATH="$T/gopath:/usr/share/gocode"
(cd "$SOURCE_DIR/tests/apps/go" && timeout 150 go build -o "$T/grpc_server" ./grpc_server) > "$T/build.log" 2>&1 ||
    fail "go build grpc_server (golang-google-grpc-dev, golang-github-coreos-go-systemd-dev): $(cat "$T/build.log")"

cat > "$T/service.lua" <<LUA
return {
  name = "grpc-e2e",
  control = "$SOCK",
  listen = { grpc = "tcp://127.0.0.1:0" },
  command = { "$T/grpc_server" },
  ready_timeout = 10,
  drain_timeout = 20,
  policy = "graceful",
}
LUA
start_baton
"$PY" "$SOURCE_DIR/tests/apps/grpc_client.py" --target "127.0.0.1:$PORT" --streams 16 --messages 40 --ms 50 \
    --stop "$T/client.stop" --started "$T/client.started" > "$T/client.log" 2> "$T/client.err" &
LPID=$! # lib.sh's cleanup kills it
client_gone() { ! kill -0 "$LPID" 2> /dev/null; }
wait_for 15 test -e "$T/client.started" || fail "the client completed no stream: $(cat "$T/client.err")"

t0=$(date +%s%N)
restarts "$RESTARTS" 1 # streams last 2 s and start at staggered times: each restart finds some half done
t1=$(date +%s%N)
touch "$T/client.stop"
wait_for 15 client_gone || fail "the client did not stop: $(cat "$T/client.err")"
wait "$LPID" || fail "grpc_client exited non-zero: $(cat "$T/client.err")"
LPID=""
RESULT=$(cat "$T/client.log")
field() { echo "$RESULT" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
[ -n "$(field streams_ok)" ] || fail "no summary from the client: $RESULT $(cat "$T/client.err")"
[ "$(field streams_failed)" = 0 ] || fail "$RESULT; first failures: $(head -5 "$T/client.err")"
# 16 streams of 2 s through ~15 s of restarts and more.
[ "$(field streams_ok)" -ge 100 ] || fail "too few streams completed: $RESULT"
[ "$(field messages)" = $(($(field streams_ok) * 40)) ] || fail "messages missing: $RESULT"
[ "$(field generations)" -ge $((RESTARTS - 2)) ] || fail "streams reached too few generations: $RESULT"

drains_clean "$RESTARTS"
# The old generations held streams when told to drain, and waited for them.
[ "$MEDIAN_MS" -ge 300 ] || fail "the median drain took $MEDIAN_MS ms: streams did not overlap the restarts"
[ "$SLOWEST_MS" -le 5000 ] || fail "a drain took $SLOWEST_MS ms, for streams of 2 s"
assert_hooks_in_budget
stop_baton
printf 'ok: grpc-go, %d restarts in %d s; %d drains: %d ended by baton seeing no connection, %d by the exit; median %d ms, slowest %d ms; %s\n' \
    "$RESTARTS" "$(((t1 - t0) / 1000000000))" "$NDRAINS" "$NIDLE" $((NDRAINS - NIDLE)) "$MEDIAN_MS" "$SLOWEST_MS" "$RESULT"
