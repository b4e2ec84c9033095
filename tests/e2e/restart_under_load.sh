#!/usr/bin/env bash
# 30 restarts under keep-alive and new-connection load: no connection
# refused, reset or cut, no non-2xx, every restart exits 0, and the
# listening socket is the same one (same inode) in every generation.
. "$(dirname "$0")/lib.sh"
RESTARTS=${RESTARTS:-30}

hello_service
start_baton
start_load

inode_of_listener() {
    local pid
    pid=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' |
        grep -o '"pid":[0-9]*,"state":"active"' | head -1 | sed 's/"pid":\([0-9]*\).*/\1/')
    readlink "/proc/$pid/fd/3"
}
first_inode=$(inode_of_listener)

for i in $(seq 1 "$RESTARTS"); do
    out=$("$BATON" restart -s "$SOCK") || fail "restart $i exited non-zero: $out"
    echo "$out" | grep -q "took over" || fail "restart $i: $out"
    [ "$(inode_of_listener)" = "$first_inode" ] || fail "generation got a different socket"
    sleep 0.1
done

stop_load
assert_no_load_errors 1000
[ "$(active_generation)" = $((RESTARTS + 1)) ] || fail "expected generation $((RESTARTS + 1)) active"
live=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"state":"[a-z]*"' | grep -vc exited || true)
[ "$live" = 1 ] || fail "expected 1 live generation after the drains, got $live"
stop_baton
pgrep -f "$HELLO --mode-file $T/mode" && fail "app processes left behind"
echo "ok: $RESTARTS restarts, $LOAD"
