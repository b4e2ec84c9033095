#!/usr/bin/env bash
# READY=1 from a process of the same user outside the generation does not
# count. The new generation never says READY=1 (hello_server's "hang" mode);
# an outsider, a process of the test's own, first tries to join the
# generation's process group (before: it could, and the datagram was
# attributed by group, so the generation was promoted) and then sends
# READY=1 to the generation's NOTIFY_SOCKET. The restart must roll back as
# not ready, the serving generation must serve on, and the load client must
# see no failed request.
. "$(dirname "$0")/lib.sh"

READY_TIMEOUT=3 hello_service
start_baton
start_load
serving=$(active_generation)

echo hang > "$T/mode"
"$BATON" restart -s "$SOCK" > "$T/restart.out" 2>&1 &
RPID=$!
new_pid() {
    "$BATON" status -s "$SOCK" --json | tr -d ' \n' |
        grep -o '"pid":[0-9]*,"state":"starting"' | grep -o '[0-9]*' | head -1
}
has_new() { [ -n "$(new_pid)" ]; }
wait_for 5 has_new || fail "the new generation did not start"
gen=$(new_pid)

python3 - "$gen" > "$T/outsider.out" 2>&1 <<'PY'
import os, socket, sys
gen = int(sys.argv[1])
env = open(f"/proc/{gen}/environ", "rb").read().split(b"\0")
path = [e.split(b"=", 1)[1] for e in env if e.startswith(b"NOTIFY_SOCKET=")][0]
try:
    os.setpgid(0, gen)
    print("joined the generation's process group")
except OSError as e:
    print(f"could not join the generation's process group: {e.strerror}")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nSTATUS=ready, says an outsider", path.decode())
print("sent READY=1")
PY
cat "$T/outsider.out"
grep -q "sent READY=1" "$T/outsider.out" || fail "the outsider could not send"

rc=0
wait "$RPID" || rc=$?
out=$(cat "$T/restart.out")
[ $rc -eq 1 ] || fail "the restart exited $rc (promoted by an outsider's READY=1?): $out"
echo "$out" | grep -q "not ready within 3s" || fail "want 'not ready within 3s' in: $out"
[ "$(active_generation)" = "$serving" ] || fail "generation $serving no longer serves"
grep -q "which is no generation of ours: ignored" "$T/sup.log" || fail "the outsider's datagram was not logged as ignored"
echo "ok: outsider's READY=1 ignored -> $out"

echo ok > "$T/mode"
"$BATON" restart -s "$SOCK" > /dev/null || fail "a normal restart afterwards failed"
stop_load
assert_no_load_errors 100
stop_baton
echo "ok: notify speaks for a generation only from inside it, $LOAD"
