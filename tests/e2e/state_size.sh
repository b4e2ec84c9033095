#!/usr/bin/env bash
# A state blob's size is bounded before anything of it is read, and its
# checksum is verified off the event loop. Under load, with a poller of the
# control socket running:
#  - a sealed, sparse memfd whose header claims 64 GiB (state.max_size 64M)
#    is refused at once, as over state.max_size (before: it was checksummed
#    on the event loop and `baton status` stalled for seconds);
#  - a well-formed 1 GiB blob (state.max_size 2G) is verified on the thread
#    pool while the control socket answers within 200 ms (or 10 x its idle
#    pace on a busy machine); it is of another
#    schema, and too large to migrate in Lua (over half the policy's memory
#    cap), so the restart is then refused with that reason, before the blob
#    is read into the VM.
# The serving generation serves throughout, and no request fails.
. "$(dirname "$0")/lib.sh"

service() { # service MAX_SIZE: the counter example under handover, checkpoints of 20 s
    COUNTER_MAX_SIZE=$1 counter_service 1 1 '{ "handover", checkpoint_timeout = 20 }'
}

service 64M
start_baton
start_load --path /load
serving=$(active_generation)
# The bound below is judged against this machine's own pace, taken now: at
# least BOUND_MS, and 10 x the slowest answer while nothing but the load
# runs (a busy machine slows both alike).
poller_baseline 2

refused() { # refused KIND PATTERN BOUND_MS
    local kind=$1 pattern=$2 out rc=0
    echo "$kind" > "$T/fault"
    start_poller
    out=$(timeout 60 "$BATON" restart -s "$SOCK" 2>&1) || rc=$?
    stop_poller_vs "$kind" "$3" 10
    [ $rc -eq 1 ] || fail "$kind: restart exited $rc, want 1: $out"
    echo "$out" | grep -q "rolled back: state refused: .*$pattern" || fail "$kind: unexpected: $out"
    active_is "$serving" || fail "$kind: generation $serving no longer serves"
    echo "ok: $kind -> $out (slowest of $POLLS status answers: $WORST ms)"
}

refused sparse "over state.max_size" 200
service 2G
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload to state.max_size 2G"
refused huge "the blob holds 1073741824 bytes, too many to migrate in Lua" 200
grep -q "checked in .* ms, off the event loop" "$T/sup.log" || fail "the 1 GiB blob was not checked off the loop"
echo "ok: $(grep -o 'generation [0-9]* stored its state: 1073741824 bytes.*' "$T/sup.log" | head -1)"

rm -f "$T/fault"
"$BATON" restart -s "$SOCK" > /dev/null || fail "a plain restart afterwards failed"
stop_load
assert_no_load_errors 100
stop_baton
echo "ok: state blob sizes bounded and checked off the loop, $LOAD"
