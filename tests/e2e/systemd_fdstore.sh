#!/usr/bin/env bash
# baton keeps its listeners in systemd's fd store (FDSTORE=1), so a
# supervisor that dies and that systemd restarts gets the same sockets
# back, and clients are never refused meanwhile. tests/apps/fake_systemd.py
# plays systemd with FileDescriptorStoreMax= and Restart=on-failure: it
# keeps the fds baton stores, and when baton dies of a signal it kills
# what is left of the service (as KillMode=mixed does) and starts baton
# again with them as LISTEN_FDS.
# Under new-connection load, 10 rounds of: SIGKILL the supervisor; a new
# one comes up on the same port, adopting the stored socket, and serves.
# A request that the killed generation was answering fails with it; no
# connection is ever refused (the socket never closed: connections wait
# in its queue until the next generation accepts them).
. "$(dirname "$0")/lib.sh"
ROUNDS=10

cat > "$T/service.lua" <<LUA
return {
  name = "e2e-fdstore",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
}
LUA
python3 "$SOURCE_DIR/tests/apps/fake_systemd.py" "$T" "$BATON" "$T/service.lua" --fdstore "$ROUNDS" \
    > "$T/sup.log" 2>&1 &
BPID=$!
said() { grep -q "^baton: .*$1" "$T/notify" 2>/dev/null; }
wait_for 15 said "READY=1" || fail "no READY=1: $(cat "$T/notify" 2>/dev/null)"
grep -q "^baton: FDSTORE=1|FDNAME=http+fd$" "$T/notify" || fail "no FDSTORE=1 for 'http': $(cat "$T/notify")"
supervisor() { "$BATON" status -s "$SOCK" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])'; }
port() {
    "$BATON" status -s "$SOCK" --json | python3 -c '
import json, sys
print(json.load(sys.stdin)["listeners"][0]["address"].rsplit(":", 1)[1])'
}
PORT=$(port)
echo "ok: listener 'http' (port $PORT) kept in the fd store"

start_load --keepalive 0 --close 8
for i in $(seq 1 "$ROUNDS"); do
    old=$(supervisor)
    kill -KILL "$old"
    another() { s=$(supervisor 2> /dev/null) && [ -n "$s" ] && [ "$s" != "$old" ]; }
    wait_for 15 another || fail "round $i: no new supervisor after SIGKILL of $old"
    wait_for 15 has_active || fail "round $i: the new supervisor brought up no generation"
    [ "$(port)" = "$PORT" ] || fail "round $i: listening on $(port), not the stored socket's port $PORT"
    sleep 0.5
done
grep -q "passed by the service manager" "$T/sup.log" || fail "the stored socket was not taken back"
stop_load
[ "$(load_field connect_errors)" = 0 ] || fail "connections were refused: $LOAD"
[ "$(load_field ok)" -gt 100 ] || fail "too few responses: $LOAD"
[ "$(wc -l < "$T/pids")" -eq $((ROUNDS + 1)) ] || fail "$(wc -l < "$T/pids") supervisors started, not $((ROUNDS + 1))"
stop_baton
echo "ok: $ROUNDS SIGKILLs of the supervisor, each restarted on the stored socket; no connection refused; $LOAD"
