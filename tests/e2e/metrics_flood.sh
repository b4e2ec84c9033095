#!/usr/bin/env bash
# Another local user cannot lock the owner out through the metrics port.
# The supervisor starts with a soft open-file limit of 1024 (as systemd
# gives services); a client of another user (nobody, when the test runs as
# root) opens 2,000 connections to the metrics endpoint and holds them.
# Before: each was accepted and held until the supervisor ran out of fds,
# and `baton status` and `baton restart` failed. Now the endpoint keeps at
# most 32 open (more are closed at once), each for 2 s at most, and the
# supervisor's own limit is raised to the hard one: the owner's status and
# restart answer, the load client sees no failed request, and the
# supervisor holds a bounded number of fds. The generations still get the
# 1024 the supervisor started with.
. "$(dirname "$0")/lib.sh"

command -v prlimit > /dev/null || { echo "skip: no prlimit"; exit 77; }
hello_service
sed -i 's|^}$|  metrics = "tcp://127.0.0.1:0",\n}|' "$T/service.lua"
prlimit --nofile=1024:8192 "$BATON" run "$T/service.lua" > "$T/sup.log" 2>&1 &
BPID=$!
wait_for 15 has_active || fail "no active generation"
status=$("$BATON" status -s "$SOCK" --json | tr -d ' \n')
PORT=$(echo "$status" | sed -n 's/.*"address":"tcp:\/\/127\.0\.0\.1:\([0-9]*\)".*/\1/p')
MPORT=$(echo "$status" | sed -n 's/.*"metrics":"tcp:\/\/127\.0\.0\.1:\([0-9]*\)".*/\1/p')
[ -n "$PORT" ] && [ -n "$MPORT" ] || fail "no ports in status: $status"
gen=$(echo "$status" | grep -o '"pid":[0-9]*,"state":"active"' | grep -o '[0-9]*')
grep -q "^Max open files *1024 " "/proc/$gen/limits" || fail "the generation did not get the original limit: $(grep 'open files' "/proc/$gen/limits")"
start_load

as_other=()
if [ "$(id -u)" = 0 ]; then
    as_other=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
# Debian's python3 (a per-user python in root's home is not nobody's).
prlimit --nofile=4096:4096 "${as_other[@]}" /usr/bin/python3 - "$MPORT" > "$T/flood.out" 2>&1 <<'PY' &
import socket, sys, time
port = int(sys.argv[1])
held = []
for i in range(2000):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    held.append(s)
print("holding", len(held), "connections", flush=True)
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    time.sleep(0.2)
PY
FLOOD=$!
wait_for 10 grep -q holding "$T/flood.out" || fail "the flood did not start: $(cat "$T/flood.out")"
sleep 1

for i in 1 2 3 4 5; do
    t0=$(date +%s%N)
    timeout 5 "$BATON" status -s "$SOCK" > /dev/null || fail "baton status failed during the flood ($i)"
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ "$ms" -lt 1000 ] || fail "baton status took $ms ms during the flood"
done
timeout 20 "$BATON" restart -s "$SOCK" > /dev/null || fail "baton restart failed during the flood"
fds=$(ls "/proc/$BPID/fd" | wc -l)
[ "$fds" -lt 200 ] || fail "the supervisor holds $fds fds during the flood"
grep -q "metrics endpoint: 32 connections open at once" "$T/sup.log" || fail "the cap was not logged"
kill "$FLOOD" 2>/dev/null || true
wait "$FLOOD" 2>/dev/null || true
# The flood's dead connections still in the accept queue are taken and
# closed first (each counts against the cap until then, 2 s at most):
# the endpoint answers again within that, not necessarily at once.
metrics_answer() { curl -sf -m 1 "http://127.0.0.1:$MPORT/metrics" | grep -q '^baton_restarts_total'; }
wait_for 5 metrics_answer || fail "/metrics does not answer after the flood"
stop_load
assert_no_load_errors 100
stop_baton
echo "ok: 2,000 held metrics connections ($(head -1 "$T/flood.out")), supervisor at $fds fds, status and restart answered, $LOAD"
