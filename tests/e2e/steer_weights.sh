#!/usr/bin/env bash
# A steered listener (docs/steering.md): each generation gets its own
# member of one SO_REUSEPORT group at the same fd and name, the supervisor
# holds each member while its generation lives, and gen:weight splits new
# connections: 10 % to the new generation receives 7-13 % of 2,000 new
# connections, none fails; `baton status` shows each weight; `baton check`
# refuses steer where it cannot work.
. "$(dirname "$0")/lib.sh"
COUNT="$(dirname "$0")/../apps/gen_count.py"

# Where steer cannot work, check says why.
for addr in "unix:$T/u.sock" "udp://127.0.0.1:0"; do
    cat > "$T/bad.lua" <<LUA
return { name = "bad", control = "$SOCK", command = { "$HELLO" },
  listen = { http = { "$addr", steer = true } } }
LUA
    out=$("$BATON" check "$T/bad.lua" 2>&1) && fail "check took steer on $addr"
    echo "$out" | grep -q "steer works on tcp:// listeners only" || fail "check on $addr: $out"
done

# A policy that keeps the old generation at 90 and gives the new one 10.
cp "$(dirname "$0")/../apps/steer_split.lua" "$T/split.lua"
cat > "$T/service.lua" <<LUA
return {
  name = "e2e-steer",
  control = "$SOCK",
  listen = { http = { "tcp://127.0.0.1:0", steer = true } },
  command = { "$HELLO" },
  ready_timeout = 5,
  drain_timeout = 5,
  policy = "split.lua",
}
LUA
"$BATON" check "$T/service.lua" > /dev/null || fail "check refused a steered tcp listener"
start_baton
[ "$(status_field 'listeners.0.steer')" = true ] || fail "status does not say the listener is steered"
status_field 'listeners.0.tcp_migrate_req' > /dev/null || fail "status does not say tcp_migrate_req"
[ "$(status_field 'generations[id=1].weight')" = 100 ] || fail "the only generation's weight is not 100"

out=$("$BATON" restart -s "$SOCK") || fail "restart: $out"
[ "$(status_field 'generations[id=1].weight')" = 90 ] || fail "old weight: $(status_field generations)"
[ "$(status_field 'generations[id=2].weight')" = 10 ] || fail "new weight: $(status_field generations)"
"$BATON" status -s "$SOCK" | grep -q "weight 10" || fail "status text shows no weight"

# Same fd, same name, each its own socket on the one port.
pid1=$(status_field 'generations[id=1].pid')
pid2=$(status_field 'generations[id=2].pid')
for p in "$pid1" "$pid2"; do
    tr '\0' '\n' < "/proc/$p/environ" | grep -qx "LISTEN_FDNAMES=http" || fail "pid $p: no LISTEN_FDNAMES=http"
    readlink "/proc/$p/fd/3" | grep -q '^socket:' || fail "pid $p: fd 3 is not a socket"
done
[ "$(readlink /proc/$pid1/fd/3)" != "$(readlink /proc/$pid2/fd/3)" ] ||
    fail "the generations share one socket: not steered"
# The supervisor holds both members.
held=0
for f in /proc/"$BPID"/fd/*; do
    l=$(readlink "$f" 2>/dev/null || true)
    [ "$l" = "$(readlink /proc/$pid1/fd/3)" ] || [ "$l" = "$(readlink /proc/$pid2/fd/3)" ] && held=$((held + 1))
done
[ "$held" = 2 ] || fail "the supervisor holds $held members, not 2"

res=$(python3 "$COUNT" "$PORT" 2000)
echo "split: $res"
n2=$(echo "$res" | tr ' ' '\n' | sed -n 's/^gen2=//p')
fails=$(echo "$res" | tr ' ' '\n' | sed -n 's/^fails=//p')
[ "$fails" = 0 ] || fail "failed connections: $res"
[ "${n2:-0}" -ge 140 ] && [ "${n2:-0}" -le 260 ] || fail "generation 2 got ${n2:-0} of 2000, not 7-13 %"

# A change of weight acts at once: all to generation 2.
cat > "$T/split.lua" <<'LUA'
local steps = require("baton.steps")
return steps.standard({
  name = "all",
  restart = function(svc, old)
    local new, why = steps.ready_new(svc)
    if not new then return nil, why end
    for _, g in ipairs(svc:generations()) do if g ~= new then assert(g:weight(0)) end end
    assert(new:weight(100))
    svc:promote(new)
    return new
  end,
})
LUA
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload"
out=$("$BATON" restart -s "$SOCK") || fail "restart 2: $out"
res=$(python3 "$COUNT" "$PORT" 300)
echo "all to 3: $res"
echo "$res" | grep -qx "gen3=300 fails=0" || fail "weight 100/0/0 did not send all to generation 3: $res"
stop_baton
echo "ok: $res"
