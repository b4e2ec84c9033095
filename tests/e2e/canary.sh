#!/usr/bin/env bash
# The canary built-in on a steered listener, with the supervisor run as an
# ordinary user (uid 65534 through setpriv when the test runs as root):
#   - at its 10 % step the canary receives 7-13 % of 2,000 new connections,
#     none fails, and `baton restart` returns 0 after the last step;
#   - a canary whose error ratio is too high is rolled back: `baton restart`
#     exits 1 saying why, its weight goes to 0 and the old one takes every
#     new connection again.
. "$(dirname "$0")/lib.sh"
COUNT="$(dirname "$0")/../apps/gen_count.py"
DIR=$T
if [ "$(id -u)" = 0 ]; then
    NB_UID=65534
    chmod 711 "$T"
    DIR="$T/nobody"
    mkdir -m 700 "$DIR"
    chown "$NB_UID:$NB_UID" "$DIR"
    printf '#!/bin/sh\nexec setpriv --reuid=%s --regid=%s --clear-groups %s "$@"\n' \
        "$NB_UID" "$NB_UID" "$BATON_IMAGE" > "$T/baton-as-nobody"
    chmod 755 "$T/baton-as-nobody"
    BATON="$T/baton-as-nobody"
    SOCK="$DIR/control.sock"
    unset XDG_RUNTIME_DIR
fi
cat > "$DIR/service.lua" <<LUA
return {
  name = "e2e-canary-$$",
  control = "$SOCK",
  listen = { http = { "tcp://127.0.0.1:0", steer = true } },
  command = { "$HELLO", "--mode-file", "$DIR/mode" },
  ready_timeout = 5,
  drain_timeout = 10,
  policy = { "canary", steps = { 10, 100 }, interval = ${CANARY_INTERVAL:-10}, poll = 0.2,
             max_error_ratio = 0.05, min_requests = 20 },
}
LUA
[ "$(id -u)" = 0 ] && chown "$NB_UID:$NB_UID" "$DIR/service.lua"
start_baton "$DIR/service.lua"
# setpriv execs baton: the pid is the supervisor's.
if [ -n "${NB_UID:-}" ]; then
    [ "$(ps -o uid= -p "$BPID" | tr -d ' ')" = "$NB_UID" ] ||
        fail "the supervisor runs as uid $(ps -o uid= -p "$BPID")"
fi
start_load --keepalive 2 --close 4

"$BATON" restart -s "$SOCK" > "$T/restart.out" 2>&1 &
RPID=$!
wait_for 15 sh -c "[ \"\$('$BATON' status -s '$SOCK' --json | python3 -c 'import json,sys; print([g.get(\"weight\") for g in json.load(sys.stdin)[\"generations\"] if g[\"id\"] == 2][0])' 2>/dev/null)\" = 10 ]" ||
    fail "the canary never reached its 10 % step: $("$BATON" status -s "$SOCK")"
res=$(python3 "$COUNT" "$PORT" 2000)
# All of them at the 10 % step: it still holds 10 once they are done.
[ "$(status_field 'generations[id=2].weight')" = 10 ] ||
    fail "the 10 % step ended before the 2,000 connections (interval too short for this host): $res"
echo "at 10 %: $res"
n2=$(echo "$res" | tr ' ' '\n' | sed -n 's/^gen2=//p')
echo "$res" | grep -q "fails=0$" || fail "failed connections: $res"
echo "$res" | grep -q "_" && fail "answers other than 200: $res"
[ "${n2:-0}" -ge 140 ] && [ "${n2:-0}" -le 260 ] || fail "the canary got ${n2:-0} of 2000, not 7-13 %"
wait "$RPID" || fail "restart exited non-zero: $(cat "$T/restart.out")"
grep -q "generation 2 took over" "$T/restart.out" || fail "restart: $(cat "$T/restart.out")"
[ "$(status_field 'generations[id=2].weight')" = 100 ] || fail "after the last step the canary's weight is not 100"
stop_load
assert_no_load_errors 100

# A bad canary: every answer a 500, counted in http.errors.
echo errors > "$DIR/mode"
[ "$(id -u)" = 0 ] && chown "$NB_UID:$NB_UID" "$DIR/mode"
"$BATON" restart -s "$SOCK" > "$T/restart2.out" 2>&1 &
RPID=$!
wait_for 15 sh -c "'$BATON' status -s '$SOCK' --json | grep -q '\"id\": *3'" || fail "no canary 3"
for _ in $(seq 1 40); do
    kill -0 "$RPID" 2>/dev/null || break
    python3 "$COUNT" "$PORT" 100 > /dev/null
done
rc=0
wait "$RPID" || rc=$?
[ $rc = 1 ] || fail "a bad canary's restart exited $rc: $(cat "$T/restart2.out")"
grep -q "error ratio" "$T/restart2.out" || fail "the rollback does not say why: $(cat "$T/restart2.out")"
echo "rolled back: $(cat "$T/restart2.out")"
[ "$(status_field 'generations[id=2].weight')" = 100 ] || fail "the old one's weight is not back to 100"
res=$(python3 "$COUNT" "$PORT" 200)
echo "$res" | grep -qx "gen2=200 fails=0" || fail "after the rollback new connections still reach the canary: $res"
stop_baton
echo "ok"
