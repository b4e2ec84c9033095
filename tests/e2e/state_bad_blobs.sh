#!/usr/bin/env bash
# Each kind of bad state blob an app can store is refused at the restart,
# with the reason in `baton restart`'s output and in the log; the old
# generation keeps serving and the load client sees no error. With nothing
# serving (the app crashed), a bad blob is left out and the next generation
# starts without it rather than not at all.
. "$(dirname "$0")/lib.sh"

counter_service 1 1
start_baton
start_load --path /load
serving=$(active_generation)

refused() {
    local kind=$1 pattern=$2 out rc=0
    echo "$kind" > "$T/fault"
    out=$("$BATON" restart -s "$SOCK" 2>&1) || rc=$?
    [ $rc -eq 1 ] || fail "$kind: restart exited $rc, want 1: $out"
    echo "$out" | grep -q "rolled back: state refused: .*$pattern" || fail "$kind: unexpected: $out"
    grep -q "stored a bad state blob: .*$pattern\|state refused: .*$pattern" "$T/sup.log" ||
        fail "$kind: not in the log"
    active_is "$serving" || fail "$kind: generation $serving no longer serves"
    echo "ok: $kind -> $out"
}

refused truncated "truncated: header says"
refused checksum "checksum mismatch"
refused unsealed "not sealed"
refused oversize "over state.max_size"
refused garbage "not a baton state blob"
refused schema "schema 99, the service expects 1"

# Good state again: the restart goes through and nothing was lost.
rm -f "$T/fault"
out=$("$BATON" restart -s "$SOCK" 2>&1) || fail "restart with good state: $out"
stop_load
assert_no_load_errors 500
have=$(count_of /load)
[ "$have" = "$(load_field ok)" ] || fail "the counter says $have hits, the client got $(load_field ok) answers"
echo "ok: six refusals, then a handover; counter $have == answers"

# Nothing serves: a bad blob is left out, the service comes back empty.
echo garbage > "$T/fault"
curl -sf "http://127.0.0.1:$PORT/_save" > /dev/null
gen=$(active_generation)
pid=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"pid":[0-9]*,"state":"active"' | grep -o '[0-9]*')
kill -9 "$pid"
wait_for 15 active_is $((gen + 1)) || fail "no generation after the crash"
grep -q "nothing serves, so the new generation starts without it" "$T/sup.log" ||
    fail "the bad blob was not left out"
[ "$(count_of /load)" = 0 ] || fail "the new generation has state it should not"
echo "ok: crash with a bad blob stored: generation $((gen + 1)) started without it"
stop_baton
