#!/usr/bin/env bash
# The built-in policies with real processes under load:
#   default + HTTP readiness probe on each generation's own health port
#   graceful: the old generation's drain ends once it is idle
#   back-to-back restarts while older generations still drain
#   bluegreen: rollback on a failing check, and by hand, zero client errors
. "$(dirname "$0")/lib.sh"
# Health ports (BASE + generation) below the ephemeral range, where the load
# client's own connections could hold one.
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
BASE=$(( 10000 + RANDOM % (low - 10100) ))

service() { # service POLICY-LUA [EXTRA-ARGS-LUA]
    cat > "$T/service.lua" <<LUA
return {
  name = "policies-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO", "--mode-file", "$T/mode", "--health-port-base", "$BASE" ${2:-} },
  ready_timeout = 3,
  drain_timeout = ${DRAIN:-10},
  policy = $1,
}
LUA
}
restart_fails_with() {
    local out rc=0
    out=$("$BATON" restart -s "$SOCK" 2>&1) || rc=$?
    [ $rc -eq 1 ] || fail "restart exited $rc, want 1: $out"
    echo "$out" | grep -q "$1" || fail "want '$1' in: $out"
    echo "ok: rolled back: $out"
}

# 1. Readiness by HTTP probe of the new generation's own port.
service '{ "default", ready = { timeout = 3, http = "http://127.0.0.1:{generation+'$BASE'}/health" } }'
start_baton
start_load
"$BATON" restart -s "$SOCK" > /dev/null || fail "healthy restart failed"
echo unhealthy > "$T/mode"
restart_fails_with "failed its readiness check within 3s: GET http://127.0.0.1:$((BASE + 3))/health: status 503"
rm -f "$T/mode"
stop_load
assert_no_load_errors 500
stop_baton

# 2. graceful: an app that lingers after draining is ended once idle.
service '{ "graceful", deadline = 30 }' ', "--stay"'
start_baton
start_load
t0=$(date +%s%N)
"$BATON" restart -s "$SOCK" > /dev/null || fail "graceful restart failed"
wait_for 10 grep -q "generation 1 is idle: ending its drain early" "$T/sup.log" || fail "drain did not end early"
took=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$took" -lt 5000 ] || fail "idle drain took ${took} ms (deadline 30 s)"
echo "ok: graceful drain ended after ${took} ms, not at the 30 s deadline"
stop_load
assert_no_load_errors 500
stop_baton

# 3. Back-to-back restarts while older generations still drain (--stay: they
#    linger until their own deadline).
DRAIN=3 service '"default"' ', "--stay"'
start_baton
start_load
for i in 1 2 3; do "$BATON" restart -s "$SOCK" > /dev/null || fail "back-to-back restart $i failed"; done
draining=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | { grep -o '"state":"draining"' || true; } | wc -l)
[ "$draining" -ge 2 ] || fail "expected several generations draining at once, got $draining"
[ "$(active_generation)" = 4 ] || fail "generation 4 should serve"
sleep 3.5
draining=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | { grep -o '"state":"draining"' || true; } | wc -l)
[ "$draining" = 0 ] || fail "$draining generations outlived their drain deadline"
echo "ok: 3 restarts back to back, 3 drains at once, each ended at its own deadline"
stop_load
assert_no_load_errors 500
stop_baton

# 4. bluegreen: both serve during the window; a failing check rolls back,
#    so does `baton rollback`; a healthy one takes over after the window.
service '{ "bluegreen", window = 2, interval = 0.2, check = { http = "http://127.0.0.1:{generation+'$BASE'}/health" } }'
start_baton
start_load
echo unhealthy > "$T/mode"
restart_fails_with "generation 2 failed its check: GET http://127.0.0.1:$((BASE + 2))/health: status 503"
rm -f "$T/mode"
"$BATON" restart -s "$SOCK" > "$T/r" 2>&1 &
RP=$!
sleep 1
out=$("$BATON" rollback -s "$SOCK") || fail "baton rollback failed: $out"
echo "$out" | grep -q "rolled back; generation 1 serves" || fail "rollback said: $out"
rc=0; wait $RP || rc=$?
[ $rc -eq 1 ] && grep -q "rolled back by hand" "$T/r" || fail "the restart was not rolled back by hand: $(cat "$T/r")"
echo "ok: baton rollback -> $out"
out=$("$BATON" rollback -s "$SOCK" 2>&1) && fail "rollback with no window succeeded: $out"
echo "$out" | grep -q "nothing to roll back" || fail "rollback without a window said: $out"
"$BATON" restart -s "$SOCK" > /dev/null || fail "healthy blue/green restart failed"
[ "$(active_generation)" = 4 ] || fail "generation 4 should serve after its window"
stop_load
assert_no_load_errors 500
stop_baton
echo "ok: policies with real processes, $LOAD"
