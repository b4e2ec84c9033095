#!/usr/bin/env bash
# A steered listener's members are carried across `baton upgrade` and
# survive the supervisor's SIGKILL (docs/steering.md, docs/takeover.md):
# two generations at 90/10 (weights a policy set); `baton upgrade`: the new
# image inherited both members, status shows the same weights, 7-13 % of
# 2,000 new connections go to generation 2. Then, under new-connection
# load, the supervisor is SIGKILLed and
# `baton run` again takes the service back: its keeper held each member,
# the carry file named each member's slot in its group and each weight, so
# status shows the same weights, new connections still split 90/10 (7-13 %
# of 2,000 to generation 2), the new supervisor holds both members, a
# restart afterwards works, and the load saw no failed connection. Last,
# a member whose generation exited while it could not leave yet is
# carried across an upgrade and leaves once the next member joins.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"
COUNT="$(dirname "$0")/../apps/gen_count.py"
SVC="$T/service.lua"

# The old generation keeps 90 beside the new one at 10 (a split).
cp "$(dirname "$0")/../apps/steer_split.lua" "$T/split.lua"
cat > "$SVC" <<LUA
return {
  name = "e2e-steer-adopt",
  control = "$SOCK",
  listen = { http = { "tcp://127.0.0.1:0", steer = true } },
  command = { "$HELLO" },
  ready_timeout = 5,
  drain_timeout = 5,
  policy = "split.lua",
}
LUA
start_baton "$SVC"
out=$("$BATON" restart -s "$SOCK") || fail "restart: $out"
[ "$(status_field 'generations[id=1].weight')" = 90 ] || fail "old weight: $(status_field generations)"
[ "$(status_field 'generations[id=2].weight')" = 10 ] || fail "new weight: $(status_field generations)"
pid1=$(status_field 'generations[id=1].pid')
pid2=$(status_field 'generations[id=2].pid')
m1=$(readlink "/proc/$pid1/fd/3")
m2=$(readlink "/proc/$pid2/fd/3")
count_split() {
    local res n2 fails
    res=$(python3 "$COUNT" "$PORT" 2000)
    echo "split $1: $res"
    n2=$(echo "$res" | tr ' ' '\n' | sed -n 's/^gen2=//p')
    fails=$(echo "$res" | tr ' ' '\n' | sed -n 's/^fails=//p')
    [ "$fails" = 0 ] || fail "failed connections $1: $res"
    [ "${n2:-0}" -ge 140 ] && [ "${n2:-0}" -le 260 ] ||
        fail "generation 2 got ${n2:-0} of 2000 $1, not 7-13 %"
}
# members_held PID: how many of the two members PID holds.
members_held() {
    local f l held=0
    for f in /proc/"$1"/fd/*; do
        l=$(readlink "$f" 2>/dev/null || true)
        { [ "$l" = "$m1" ] || [ "$l" = "$m2" ]; } && held=$((held + 1))
    done
    echo "$held"
}

out=$("$BATON" upgrade -s "$SOCK" 2>&1) || fail "upgrade with a steered listener: $out"
[ "$(status_field 'generations[id=1].weight')" = 90 ] || fail "old weight after the upgrade: $(status_field generations)"
[ "$(status_field 'generations[id=2].weight')" = 10 ] || fail "new weight after the upgrade: $(status_field generations)"
[ "$(status_field 'image.upgrades')" = 1 ] || fail "no upgrade counted"
[ "$(members_held "$BPID")" = 2 ] || fail "the upgraded image holds $(members_held "$BPID") members, not 2"
count_split "after the upgrade"

keeper=$(keeper_of)
[ -n "$keeper" ] || fail "no keeper"
# The keeper holds both members, as the supervisor does.
[ "$(members_held "$keeper")" = 2 ] || fail "the keeper holds $(members_held "$keeper") members, not 2"
track "$pid1" "$pid2" "$keeper"

start_load --keepalive 4 --close 8
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
run_baton
# Both generations are "active" in status (the old one serves its share):
# the log says which one the new supervisor took as the serving one.
taken() { view && [ "$VPID" = "$BPID" ] && grep -q "generation(s) adopted, generation 2 serves" "$T/sup.log"; }
wait_for 15 taken || fail "not taken back: $(view_text)"
track "$(keeper_of)"
[ "$(status_field 'generations[id=1].weight')" = 90 ] ||
    fail "old weight after the takeover: $(status_field generations)"
[ "$(status_field 'generations[id=2].weight')" = 10 ] ||
    fail "new weight after the takeover: $(status_field generations)"
[ "$(status_field 'generations[id=1].pid')" = "$pid1" ] || fail "generation 1 did not serve on"
[ "$(members_held "$BPID")" = 2 ] || fail "the new supervisor holds $(members_held "$BPID") members, not 2"
wait_for 10 gone "$keeper" "$(start_ticks "$keeper")" || fail "the old keeper did not let go"

count_split "after the takeover"

out=$("$BATON" restart -s "$SOCK") || fail "restart after the takeover: $out"
grep -q "restart: generation 3 took over from generation 2" "$T/sup.log" ||
    fail "generation 3 did not take over after the takeover"
[ "$(status_field 'generations[id=3].weight')" = 10 ] || fail "generation 3: $(status_field generations)"
res=$(python3 "$COUNT" "$PORT" 500)
echo "after the restart: $res"
echo "$res" | grep -q "fails=0" || fail "failed connections after the restart: $res"
echo "$res" | grep -q "gen3=" || fail "generation 3 got no connection: $res"
stop_load
assert_no_load_errors

# A member whose generation exited while it could not leave (generation
# 3, the group's last member, has a share) is carried as leaving across
# an upgrade, and leaves once the next generation's member joins.
readlink_any() {
    local f
    for f in /proc/"$1"/fd/*; do
        [ "$(readlink "$f" 2>/dev/null)" = "$m1" ] && { echo yes; return; }
    done
    echo no
}
kill -TERM "$pid1"
wait_for 10 grep -q "generation 1 (pid $pid1) exited" "$T/sup.log" || fail "generation 1 did not exit"
sleep 1 # past STEER_GRACE: it would have left by now, were it free to
[ "$(readlink_any "$BPID")" = yes ] || fail "generation 1's member left though the last one has a share"
out=$("$BATON" upgrade -s "$SOCK" 2>&1) || fail "upgrade with a leaving member: $out"
out=$("$BATON" restart -s "$SOCK") || fail "restart after the upgrade: $out"
wait_for 15 sh -c "! ls -l /proc/$BPID/fd 2>/dev/null | grep -qF '$m1'" ||
    fail "generation 1's member is still held after the next one joined"
k=$(keeper_of)
[ -n "$k" ] || fail "no keeper at the end"
wait_for 10 sh -c "! ls -l /proc/$k/fd 2>/dev/null | grep -qF '$m1'" ||
    fail "the keeper still holds generation 1's member after it left"
stop_baton
tracked_left || fail "left running: $LEFT"
echo "ok: $res"
