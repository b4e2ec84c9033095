#!/usr/bin/env bash
# An upgrade's check is bounded in time whatever the checked binary leaves
# behind: it runs in a session of its own, killed whole at the deadline,
# and its verdict comes from its exit, not from the end of its output.
# Under load, `baton status` answering throughout:
#   a. a binary that starts a background process holding its output and
#      exits 1: refused at once, the background process gone;
#   b. a binary that hangs, with a background process holding its output:
#      refused at the deadline (UPGRADE_CHECK_SECONDS, 10 s), both gone;
#   then `baton upgrade` to the real binary works, and not one request
#   failed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"
REAL_BATON=$(readlink -f "$BATON")
hello_service
start_baton
start_load
poller_baseline 1
start_poller

# bad NAME EXIT_LINE: a binary that leaves `sleep` holding its output,
# its pid in $T/NAME.bg, then runs EXIT_LINE.
bad() {
    printf '#!/bin/sh\nsleep 300 &\necho $! > %s\necho "not a baton"\n%s\n' "$T/$1.bg" "$2" > "$T/$1"
    chmod 755 "$T/$1"
}
bad quits "exit 1"
bad hangs "exec sleep 300"

for b in quits hangs; do
    rc=0
    out=$(timeout 40 "$BATON" upgrade -s "$SOCK" --binary "$T/$b" 2>&1) || rc=$?
    [ $rc = 1 ] || fail "$b: baton upgrade exited $rc (124: no verdict in 40 s): $out"
    echo "$out" | grep -q "upgrade refused" || fail "$b: $out"
    bg=$(cat "$T/$b.bg")
    dead() { ! kill -0 "$bg" 2> /dev/null || [ "$(ps -o stat= -p "$bg" | cut -c1)" = Z ]; }
    wait_for 5 dead || fail "$b: the background process $bg it left still runs"
    echo "ok: $b: refused, its background process gone: $(echo "$out" | head -1)"
done
grep -q "hangs did not answer its check within 10s" "$T/sup.log" || fail "hangs: no word of the deadline"

# The poller judged the checks; it stops before the real upgrade, whose
# exec drops a status request caught between its accept and its answer.
stop_poller_vs "upgrade checks" 1000 20
out=$(timeout 60 "$BATON" upgrade -s "$SOCK" --binary "$REAL_BATON" 2>&1) || fail "the next upgrade: $out"
echo "$out" | grep -q "upgraded" || fail "the next upgrade: $out"
stop_load
assert_no_load_errors 500
stop_baton
echo "ok: the next upgrade: $out; the slowest of $POLLS status answers: $WORST ms; $LOAD"
