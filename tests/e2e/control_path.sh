#!/usr/bin/env bash
# The control socket's path: baton removes nothing there but a stale socket
# of its own. A regular file or a symlink at the path is refused, with the
# reason, and left exactly as it was (before, the file was unlinked and
# replaced); a stale socket (a supervisor that was SIGKILLed) is replaced;
# a live one belongs to a running supervisor, which keeps serving its load
# without a failed request while a second `baton run` is refused.
. "$(dirname "$0")/lib.sh"

refused_run() { # refused_run WHAT PATTERN
    local out rc=0
    out=$(timeout 20 "$BATON" run "$T/other.lua" 2>&1) || rc=$?
    [ $rc -eq 1 ] || fail "$1: baton run exited $rc: $out"
    echo "$out" | grep -q "$2" || fail "$1: want '$2' in: $out"
    echo "ok: $1 -> $(echo "$out" | grep error | head -1)"
}
other_service() { # other_service CONTROL_PATH
    cat > "$T/other.lua" <<LUA
return { name = "other", control = "$1", listen = { http = "tcp://127.0.0.1:0" },
         command = { "$HELLO" } }
LUA
}

# A regular file where the control socket would go.
echo "precious data" > "$T/precious"
other_service "$T/precious"
refused_run "a regular file" "not a stale socket of ours"
[ "$(cat "$T/precious")" = "precious data" ] || fail "the regular file was changed"

# A symlink to it.
ln -s "$T/precious" "$T/link.sock"
other_service "$T/link.sock"
refused_run "a symlink" "not a stale socket of ours"
[ -L "$T/link.sock" ] && [ "$(cat "$T/precious")" = "precious data" ] || fail "the symlink or its target was changed"

# The runtime folder (where the notify socket goes) is never reached
# through a symlink, and one that others may enter is refused.
ln -s /tmp "$T/rundir-link"
mkdir -m 0755 "$T/rundir-open"
other_service "$T/other.sock"
for d in rundir-link rundir-open; do
    out=$(XDG_RUNTIME_DIR="$T/$d" timeout 20 "$BATON" run "$T/other.lua" 2>&1) && fail "$d: baton run started"
    echo "$out" | grep -q "runtime folder $T/$d: not ours or not mode 0700" || fail "$d: $out"
    echo "ok: runtime folder $d refused"
done

# A stale socket of ours: a supervisor SIGKILLed leaves it; the next run takes it.
hello_service
start_baton
orphan=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"pid":[0-9]*,"state":"active"' | grep -o '[0-9]*')
kill -9 "$BPID"
wait "$BPID" 2>/dev/null || true
kill_tree "$orphan" # its generation, orphaned: ended by its pid
BPID=""
[ -S "$SOCK" ] || fail "no stale socket left to test with"
start_baton
echo "ok: a stale socket of ours was replaced"

# A live one: the running supervisor keeps it and keeps serving.
start_load
other_service "$SOCK"
refused_run "a live supervisor's socket" "another supervisor is running there"
"$BATON" status -s "$SOCK" > /dev/null || fail "the running supervisor lost its control socket"
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart after the refused run"
stop_load
assert_no_load_errors 100
stop_baton
echo "ok: control paths, $LOAD"
