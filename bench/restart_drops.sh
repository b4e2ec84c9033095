#!/usr/bin/env bash
# What a restart costs the clients, three ways, under the same load:
#
#   baton          `baton restart`: the new generation inherits the listening
#                  socket, the old one drains (the default policy)
#   stop-start     SIGTERM the app, wait for it to exit, start it again; it
#                  binds its own socket
#   reuseport      start the new app on its own SO_REUSEPORT socket beside the
#                  old, wait until it listens, then SIGTERM the old
#
# The app is the example server with --start-delay (a realistic start-up),
# the load 8 keep-alive + 8 new-connection clients. It prints failed requests
# per 1000 restarts for each way, and baton's restart latency (command to old
# generation gone) against the app's own start time (exec to READY=1),
# measured in this same run.
#
#   bench/restart_drops.sh [RESTARTS] [START_DELAY_MS]     (defaults 50, 100)
set -euo pipefail
cd "$(dirname "$0")/.."
RESTARTS=${1:-50}
DELAY=${2:-100}
. bench/lib.sh
bench_build
W=$(mktemp -d /tmp/baton-bench.XXXXXX)
BPID="" APP="" NEW="" LPID=""
cleanup() {
    # What this script started, by pid: the supervisor with its generations,
    # the apps of the other two ways, the load.
    kill_tree "$BPID" "$APP" "$NEW" "$LPID"
    [ -z "${KEEP:-}" ] || cp "$W/sup.log" /tmp/bench-sup.log
    rm -rf "$W"
}
trap cleanup EXIT

start_load() { "$LOADGEN" --port "$PORT" --keepalive 8 --close 8 --duration 600 > "$W/load.$1" & LPID=$!; sleep 1; }
stop_load() {
    kill -INT "$LPID"; wait "$LPID"; LPID=""
    LOAD=$(grep '^loadgen:' "$W/load.$1")
    FAILED=$(( $(load_field "$LOAD" non2xx) + $(load_field "$LOAD" connect_errors) + $(load_field "$LOAD" resets) + $(load_field "$LOAD" eof) + $(load_field "$LOAD" timeouts) ))
    OK=$(load_field "$LOAD" ok)
}

declare -A R_FAILED R_OK R_LOAD R_SECS

# --- baton ------------------------------------------------------------------
PORT=$(free_port)
cat > "$W/svc.lua" <<LUA
return { name = "bench", control = "$W/ctl.sock", listen = { http = "tcp://127.0.0.1:$PORT" },
         command = { "$HELLO", "--start-delay", "$DELAY" }, ready_timeout = 30, drain_timeout = 30 }
LUA
"$BATON" run "$W/svc.lua" 2> "$W/sup.log" & BPID=$!
for _ in $(seq 1 200); do "$BATON" status -s "$W/ctl.sock" 2>/dev/null | grep -q active && break; sleep 0.05; done
start_load baton
t0=$(now_ms)
: > "$W/latency"
for i in $(seq 1 "$RESTARTS"); do
    old=$(baton_active_pid "$W/ctl.sock")
    a=$(date +%s%N)
    "$BATON" restart -s "$W/ctl.sock" > /dev/null
    wait_until 60 gone "$old"
    echo $(( ($(date +%s%N) - a) / 1000 )) >> "$W/latency"
done
R_SECS[baton]=$(( $(now_ms) - t0 ))
stop_load baton
R_FAILED[baton]=$FAILED R_OK[baton]=$OK R_LOAD[baton]=$LOAD
"$BATON" status -s "$W/ctl.sock" --json | tr -d ' \n' | grep -o '"ready_after":[0-9.]*' |
    sed 's/"ready_after"://' | awk '{printf "%d\n", $1 * 1e6}' > "$W/startup"
"$BATON" stop -s "$W/ctl.sock" > /dev/null; wait "$BPID" || true; BPID=""
# The supervisor's own view, from its log: restart requested -> old generation gone.
awk '
  function ms(t) { split(t, a, ":"); return (a[1] * 3600 + a[2] * 60 + a[3]) * 1000 }
  /restart requested/ { req = ms($1) }
  /drained in/ && req { printf "%d\n", (ms($1) - req) * 1000; req = 0 }
' "$W/sup.log" > "$W/sup_latency"
SUPLAT=$(median < "$W/sup_latency")
LAT=$(median < "$W/latency")
START=$(median < "$W/startup")

# --- stop-then-start ----------------------------------------------------------
PORT=$(free_port)
"$HELLO" --bind "127.0.0.1:$PORT" --start-delay "$DELAY" 2>/dev/null & APP=$!
wait_until 10 listening "$PORT" 1
start_load stop
t0=$(now_ms)
for i in $(seq 1 "$RESTARTS"); do
    kill -TERM "$APP"; wait "$APP" 2>/dev/null || true
    "$HELLO" --bind "127.0.0.1:$PORT" --start-delay "$DELAY" 2>/dev/null & APP=$!
    wait_until 10 listening "$PORT" 1
done
R_SECS[stop]=$(( $(now_ms) - t0 ))
stop_load stop
R_FAILED[stop]=$FAILED R_OK[stop]=$OK R_LOAD[stop]=$LOAD
kill -TERM "$APP"; wait "$APP" 2>/dev/null || true; APP=""

# --- SO_REUSEPORT overlap -------------------------------------------------------
PORT=$(free_port)
"$HELLO" --bind "127.0.0.1:$PORT" --reuseport --start-delay "$DELAY" 2>/dev/null & APP=$!
wait_until 10 listening "$PORT" 1
start_load reuseport
t0=$(now_ms)
for i in $(seq 1 "$RESTARTS"); do
    "$HELLO" --bind "127.0.0.1:$PORT" --reuseport --start-delay "$DELAY" 2>/dev/null & NEW=$!
    wait_until 10 listening "$PORT" 2
    kill -TERM "$APP"; wait "$APP" 2>/dev/null || true
    APP=$NEW NEW=""
done
R_SECS[reuseport]=$(( $(now_ms) - t0 ))
stop_load reuseport
R_FAILED[reuseport]=$FAILED R_OK[reuseport]=$OK R_LOAD[reuseport]=$LOAD
kill -TERM "$APP"; wait "$APP" 2>/dev/null || true; APP=""

# --- report ---------------------------------------------------------------------
echo "restarts per way: $RESTARTS; app start-up delay: ${DELAY} ms; load: 8 keep-alive + 8 new-connection clients"
printf '%-12s %10s %10s %14s %10s\n' way responses failed "failed/1000r" seconds
for w in baton stop reuseport; do
    name=$w; [ $w = stop ] && name=stop-start
    printf '%-12s %10s %10s %14s %10.1f\n' "$name" "${R_OK[$w]}" "${R_FAILED[$w]}" \
        "$(awk -v f="${R_FAILED[$w]}" -v r="$RESTARTS" 'BEGIN {printf "%.0f", f * 1000 / r}')" \
        "$(awk -v ms="${R_SECS[$w]}" 'BEGIN {print ms / 1000}')"
done
for w in baton stop reuseport; do echo "  $w: ${R_LOAD[$w]}"; done
us_ms() { awk -v u="$1" 'BEGIN {printf "%.1f", u / 1000}'; }
echo "app start time (exec to READY=1), median:                      $(us_ms "$START") ms"
echo "baton restart latency, supervisor (request to old gone), median: $(us_ms "$SUPLAT") ms" \
     "(ratio to app start: $(awk -v a="$SUPLAT" -v b="$START" 'BEGIN {printf "%.2f", a / b}'))"
echo "baton restart latency, shell (baton restart + poll old pid), median: $(us_ms "$LAT") ms" \
     "(ratio to app start: $(awk -v a="$LAT" -v b="$START" 'BEGIN {printf "%.2f", a / b}'))"
