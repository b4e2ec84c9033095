#!/usr/bin/env bash
# A Go net/http server speaking HTTP/1.1 and h2c (tests/apps/go/h2c_server,
# set up as docs/recipes.md says: go-systemd's activation for its
# listeners, a per_generation health listener for baton's readiness probe,
# and a drain of its own instead of srv.Shutdown, which closes idle
# keep-alive connections at once and does not wait for h2c connections)
# under the graceful policy, built in GOPATH mode from Debian's golang-*-dev
# packages (no module download). Through 15 restarts:
# - Go's HTTP/2 client (tests/apps/go/h2c_client) keeps 20 streams of ~2 s
#   over h2c going, and 4 HTTP/1.1 keep-alive clients: no failed stream or
#   request (an error, a wrong status, a short body);
# - baton's loadgen, which does not retry (Go's Transport retries a GET on a
#   reused connection that closed unanswered, and so would hide an app that
#   closes idle keep-alive connections at SIGTERM), on 8 keep-alive and 8
#   new connections at once: no error either;
# - every old generation's drain ends by idleness (baton sees no connection)
#   or by the app's exit once its last connection closed; none at its
#   deadline, and the median one lasts about as long as a stream.
if ! command -v go > /dev/null; then
    echo "SKIP: go is not installed (golang-go)"
    exit 77
fi
. "$(dirname "$0")/lib.sh"
RESTARTS=${RESTARTS:-15}

# GOPATH mode: imports come from Debian's /usr/share/gocode, nothing is
# downloaded; the build cache lives and dies with $T.
export GO111MODULE=off GOFLAGS="" GOPROXY=off GOCACHE="$T/gocache" GOPATH="$T/gopath:/usr/share/gocode"
for p in h2c_server h2c_client; do
    (cd "$SOURCE_DIR/tests/apps/go" && timeout 120 go build -o "$T/$p" "./$p") > "$T/build.log" 2>&1 ||
        fail "go build $p (golang-golang-x-net-dev, golang-github-coreos-go-systemd-dev): $(cat "$T/build.log")"
done

cat > "$T/service.lua" <<LUA
return {
  name = "go-h2c-e2e",
  control = "$SOCK",
  listen = { { "http", "tcp://127.0.0.1:0" },
             { "health", "tcp://127.0.0.1:0", per_generation = true } },
  command = { "$T/h2c_server" },
  drain_timeout = 20,
  policy = { "graceful", ready = { notify = false, timeout = 10,
                                   http = "http://127.0.0.1:{port:health}/" } },
}
LUA
start_baton
"$T/h2c_client" -addr "127.0.0.1:$PORT" -streams 20 -h1 4 -chunks 20 -ms 100 \
    -stop "$T/client.stop" -started "$T/client.started" > "$T/client.log" 2> "$T/client.err" &
CPID=$!
# lib.sh's cleanup stops the supervisor's tree and the loadgen; this one too.
stop_all() {
    local rc=$?
    set +e
    [ -z "${CPID:-}" ] || kill -9 "$CPID" 2> /dev/null
    (exit $rc)
    cleanup
}
trap stop_all EXIT
client_gone() { ! kill -0 "$CPID" 2> /dev/null; }
wait_for 15 test -e "$T/client.started" || fail "the client completed no stream: $(cat "$T/client.err")"
start_load

t0=$(date +%s%N)
restarts "$RESTARTS" 1 # streams last 2 s and start at staggered times: each restart finds some half done
t1=$(date +%s%N)
stop_load
assert_no_load_errors 10000
touch "$T/client.stop"
wait_for 15 client_gone || fail "the client did not stop: $(cat "$T/client.err")"
wait "$CPID" || fail "h2c_client exited non-zero: $(cat "$T/client.err")"
CPID=""
RESULT=$(cat "$T/client.log")
field() { echo "$RESULT" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
[ -n "$(field streams_ok)" ] || fail "no summary from the client: $RESULT $(cat "$T/client.err")"
for f in streams_failed h1_failed; do
    [ "$(field $f)" = 0 ] || fail "$RESULT; first failures: $(head -5 "$T/client.err")"
done
# 20 streams of 2 s through ~15 s of restarts and more.
[ "$(field streams_ok)" -ge 120 ] || fail "too few streams completed: $RESULT"
[ "$(field h1_ok)" -ge 500 ] || fail "too few HTTP/1.1 requests: $RESULT"
[ "$(field generations)" -ge $((RESTARTS - 2)) ] || fail "streams reached too few generations: $RESULT"

drains_clean "$RESTARTS"
# The old generations held streams when told to drain, and waited for them.
[ "$MEDIAN_MS" -ge 300 ] || fail "the median drain took $MEDIAN_MS ms: streams did not overlap the restarts"
[ "$SLOWEST_MS" -le 5000 ] || fail "a drain took $SLOWEST_MS ms, for streams of 2 s"
assert_hooks_in_budget
stop_baton
printf 'ok: go net/http + h2c, %d restarts in %d s; %d drains: %d ended by baton seeing no connection, %d by the exit; median %d ms, slowest %d ms; %s\n' \
    "$RESTARTS" "$(((t1 - t0) / 1000000000))" "$NDRAINS" "$NIDLE" $((NDRAINS - NIDLE)) "$MEDIAN_MS" "$SLOWEST_MS" "$RESULT; $LOAD"
