#!/usr/bin/env bash
# A canary cut short by the supervisor's death (docs/steering.md): the
# canary built-in at its 10 % step, SIGKILL, `baton run` again: the canary
# was never promoted, so its restart was cut short and it is rolled back
# as any such restart is (weight 0, drained, gone), while the generation
# that served keeps its weight and takes every new connection; a restart
# afterwards works. The policy's own variables (the step) are not carried.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"
COUNT="$(dirname "$0")/../apps/gen_count.py"
SVC="$T/service.lua"
cat > "$SVC" <<LUA
return {
  name = "e2e-steer-adopt-canary",
  control = "$SOCK",
  listen = { http = { "tcp://127.0.0.1:0", steer = true } },
  command = { "$HELLO" },
  ready_timeout = 5,
  drain_timeout = 5,
  policy = { "canary", steps = { 10, 100 }, interval = 60, poll = 0.2, quiet = 0 },
}
LUA
start_baton "$SVC"
"$BATON" restart -s "$SOCK" > "$T/restart.out" 2>&1 &
RPID=$!
at_step() { [ "$(status_field 'generations[id=2].weight')" = 10 ]; }
wait_for 15 at_step || fail "the canary did not reach its 10 % step: $(status_field generations)"
pid1=$(status_field 'generations[id=1].pid')
pid2=$(status_field 'generations[id=2].pid')
track "$pid1" "$pid2" "$(keeper_of)"
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
wait "$RPID" 2> /dev/null || true # its supervisor died: it fails, as it should
run_baton
taken() { view && [ "$VPID" = "$BPID" ] && grep -q "generation(s) adopted, generation 1 serves" "$T/sup.log"; }
wait_for 15 taken || fail "not taken back: $(view_text)"
track "$(keeper_of)"
grep -q "rolled back: its restart was cut short when the supervisor died" "$T/sup.log" ||
    grep -q "generation 2 draining" "$T/sup.log" || fail "the canary was not rolled back"
w1=$(status_field 'generations[id=1].weight')
[ "$w1" = 90 ] || fail "the generation that served lost its weight: $(status_field generations)"
w2=$(status_field 'generations[id=2].weight')
[ "$w2" = 0 ] || [ "$w2" = null ] || fail "the canary kept a share: $(status_field generations)"
wait_for 15 gone "$pid2" "$(start_ticks "$pid2")" || fail "the rolled-back canary still runs"
res=$(python3 "$COUNT" "$PORT" 300)
echo "after the takeover: $res"
echo "$res" | grep -qx "gen1=300 fails=0" || fail "new connections did not all go to generation 1: $res"
# A restart afterwards: the canary's steps again, from the start (quick ones).
sed -i 's/interval = 60/interval = 1/' "$SVC"
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload"
out=$("$BATON" restart -s "$SOCK") || fail "restart after the takeover: $out"
res=$(python3 "$COUNT" "$PORT" 300)
echo "after the restart: $res"
echo "$res" | grep -qx "gen3=300 fails=0" || fail "the restart's generation does not take every connection: $res"
stop_baton
tracked_left || fail "left running: $LEFT"
echo "ok"
