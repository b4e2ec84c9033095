#!/usr/bin/env bash
# A new generation that crashes at start, one that never becomes ready, and
# one whose command has vanished: each restart exits 1 saying why, the old
# generation keeps serving, and the load client sees no error at all.
. "$(dirname "$0")/lib.sh"

cp "$HELLO" "$T/app"
APP="$T/app" READY_TIMEOUT=1 hello_service
start_baton
start_load
serving=$(active_generation)

expect_rollback() {
    local what=$1 pattern=$2 out rc=0
    out=$("$BATON" restart -s "$SOCK" 2>&1) || rc=$?
    [ $rc -eq 1 ] || fail "$what: restart exited $rc, want 1: $out"
    echo "$out" | grep -q "rolled back" || fail "$what: no 'rolled back' in: $out"
    echo "$out" | grep -q "$pattern" || fail "$what: no '$pattern' in: $out"
    [ "$(active_generation)" = "$serving" ] || fail "$what: generation $serving no longer active"
    echo "ok: $what -> $out"
}

echo crash > "$T/mode"
expect_rollback "crash at start" "exited before it was ready (exit code 3)"
echo hang > "$T/mode"
expect_rollback "never ready" "was not ready within 1s"
rm -f "$T/mode"
mv "$T/app" "$T/app.moved"
expect_rollback "command gone" "No such file or directory"
mv "$T/app.moved" "$T/app"

# Nothing left over from the failed generations.
live=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"state":"[a-z]*"' | grep -vc exited || true)
[ "$live" = 1 ] || fail "expected only the serving generation alive, got $live"

# And the service still restarts normally afterwards.
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart after rollbacks failed"
stop_load
assert_no_load_errors 1000
stop_baton
echo "ok: rollbacks with $LOAD"
