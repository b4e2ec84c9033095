#!/usr/bin/env bash
# Nothing the supervisor talks to can freeze its loop:
#   a. the keeper SIGSTOPped: 200 restarts under load, `baton status`
#      answering throughout (a client every 2 ms); the keeper that takes
#      nothing is killed and replaced, and the log says so; a SIGKILL of
#      the supervisor after that is taken back (the new keeper holds
#      everything);
#   b. a supervisor whose stderr is a pipe nobody reads, its app printing
#      some 8,000 lines a second: `baton status` keeps answering; once the
#      pipe is read again, the lines that did not fit are counted in a
#      warning.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"
RESTARTS=${RESTARTS:-200}

export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
SVC="$T/service.lua"
hello_service
: > "$T/sup.log"

# --- a. a stopped keeper -------------------------------------------------------------
run_baton
wait_for 15 has_active || fail "a: supervisor did not bring up an active generation"
view
PORT=$VPORT
keeper=$VKEEPER
[ "$keeper" != - ] || fail "a: no keeper in status"
kticks=$(start_ticks "$keeper")
track "$keeper"
start_load
kill -STOP "$keeper"
start_poller
for i in $(seq 1 "$RESTARTS"); do
    out=$(timeout 30 "$BATON" restart -s "$SOCK" 2>&1) || fail "a: restart $i: $out"
done
stop_poller "a: $RESTARTS restarts with the keeper stopped" 3000
echo "ok: a. $RESTARTS restarts with keeper $keeper stopped; the slowest of $POLLS status answers: $WORST ms"
# Replaced for whichever comes first: 5 s without taking anything, or its
# queue full (200 restarts may fill it before the 5 s are up).
replaced() { grep -q "the keeper (pid $keeper) \(took nothing for 5 s\|let its queue fill\)" "$T/sup.log"; }
wait_for 10 replaced ||
    fail "a: the stuck keeper was not replaced: $(grep keeper "$T/sup.log" | tail -3)"
wait_for 5 gone "$keeper" "$kticks" || fail "a: the stuck keeper $keeper still runs"
new_keeper() { view && [ "$VKEEPER" != - ] && [ "$VKEEPER" != "$keeper" ]; }
wait_for 10 new_keeper || fail "a: no new keeper in status (was $keeper)"
echo "ok: a. $(grep -m1 "the keeper (pid $keeper) took nothing" "$T/sup.log" | sed 's/^.* warn: //')"
# The new keeper holds everything: a death now is taken back.
view
served=$VACT
kids=$(ps -o pid= --ppid "$BPID" | tr -d ' ' | tr '\n' ' ')
# shellcheck disable=SC2086 # one pid a word
track $kids
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
run_baton
wait_for 15 adopted_serving "$served" || fail "a: generation $served not adopted after the SIGKILL: $(view_text)"
stop_load
assert_no_load_errors 1000
stop_baton
wait_for 5 tracked_left || fail "a: left behind after baton stop:$LEFT"
echo "ok: a. then SIGKILLed and taken back, stopped: $LOAD"

# --- b. a stderr nobody reads ---------------------------------------------------------
cat > "$T/chatty.sh" <<SH
#!/bin/sh
python3 -c '
import sys, time
while True:
    sys.stdout.write("chatty line of some forty bytes or so\n" * 400)
    sys.stdout.flush()
    time.sleep(0.05)' &
exec "$HELLO" --mode-file "$T/mode"
SH
chmod +x "$T/chatty.sh"
sed -i "s|command = {[^}]*}|command = { \"$T/chatty.sh\" }|" "$SVC"
mkfifo "$T/stderr"
exec 3<> "$T/stderr" # held open, read by nobody until the end
"$BATON" run "$SVC" 2> "$T/stderr" > /dev/null &
BPID=$!
wait_for 15 has_active || fail "b: supervisor did not bring up an active generation"
sleep 2 # the pipe (64 KiB) is full within a second
start_poller
sleep 3
stop_poller "b: stderr not read" 3000
echo "ok: b. stderr not read: the slowest of $POLLS status answers took $WORST ms"
timeout 3 cat <&3 > "$T/stderr.out" || true
grep -q "line(s) of output dropped: the reader of stderr did not keep up" "$T/stderr.out" ||
    fail "b: no count of dropped lines in $(wc -c < "$T/stderr.out") bytes of stderr"
echo "ok: b. $(grep -m1 "line(s) of output dropped" "$T/stderr.out" | sed 's/^.* warn: //')"
stop_baton
exec 3<&-
