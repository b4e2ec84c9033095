#!/usr/bin/env bash
# A `baton run` after a SIGKILL of the supervisor that fails, or a taker
# that hangs up, never loses the service: the keeper hands over in two
# phases (copies first; its own kept until the taker's keeper holds them,
# keeper.h). Under keep-alive and new-connection load throughout:
#   a. a taker that takes the copies and hangs up without confirming
#      (a stand-in for a `baton run` killed half-way): the keeper says so
#      and holds on;
#   b. a `baton run` whose metrics port another process holds: it exits
#      non-zero naming the metrics endpoint, and takes nothing (what is
#      not carried is bound before anything is taken);
#   c. a `baton run` whose control socket's path holds a regular file: it
#      exits non-zero naming the control socket, and takes nothing;
#   d. a `baton run` that fails after the take (the notify socket's path,
#      which a takeover keeps, holds a regular file): the keeper holds on;
#   then, the port and the path freed, a `baton run` takes the service
#   back: the same generation active and adopted, the old keeper gone once
#   a new one holds everything; `baton restart` hands over; not one failed
#   request, and nothing left behind after `baton stop`.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"

export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
NAME=faults-e2e
SVC="$T/service.lua"
MPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$SVC" <<LUA
return {
  name = "$NAME",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  metrics = "tcp://127.0.0.1:$MPORT",
  command = { "$HELLO", "--mode-file", "$T/mode" },
  ready_timeout = 5,
  drain_timeout = 10,
}
LUA
: > "$T/sup.log"
run_baton
wait_for 15 has_active || fail "supervisor did not bring up an active generation"
view
PORT=$VPORT
served=$VACT served_pid=$VACTPID
start_load

kids=$(ps -o pid= --ppid "$BPID" | tr -d ' ' | tr '\n' ' ')
# shellcheck disable=SC2086 # one pid a word
track $kids
keeper=$(view && echo "$VKEEPER")
[ -n "$keeper" ] && [ "$keeper" != - ] || fail "no keeper in status"
kticks=$(start_ticks "$keeper")
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
BPID=""
kpath() { ls "$XDG_RUNTIME_DIR"/$NAME*.keeper 2> /dev/null | head -1; }
kanswers() { [ -S "$(kpath)" ]; }
wait_for 5 kanswers || fail "the keeper does not answer after the SIGKILL"

keeper_holds() {
    alive "$keeper" "$kticks" || fail "$1: keeper $keeper is gone: the service is lost"
    curl -sf -m 2 "http://127.0.0.1:$PORT/" > /dev/null || fail "$1: the generation does not serve"
}

# --- a. a taker that hangs up after the first phase ------------------------------
got=$(timeout 20 python3 - "$(kpath)" <<'PY'
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
heads = []
for _ in range(100000):
    data, fds, _flags, _addr = socket.recv_fds(s, 64, 4)
    for fd in fds:
        os.close(fd)
    if not data or data == b"E":
        break
    heads.append(data.decode())
s.close() # never "K"
print(" ".join(heads))
PY
) || fail "a: the stand-in taker failed: $got"
case " $got " in *" L 0 "*) ;; *) fail "a: the stand-in taker got no listener: '$got'" ;; esac
sleep 0.3
keeper_holds "a"
wait_for 5 grep -q "did not confirm (it hung up)" "$T/sup.log" ||
    fail "a: the keeper did not say the taker hung up: $(tail -3 "$T/sup.log")"
echo "ok: a. a taker took copies of '$got' and hung up: keeper $keeper holds on"

# --- b. the metrics port held by another process ---------------------------------
python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
open(sys.argv[2], "w").close()
time.sleep(60)' "$MPORT" "$T/held" &
HOLDER=$!
wait_for 10 test -e "$T/held" || fail "b: cannot hold port $MPORT"
rc=0
timeout 30 "$BATON" run "$SVC" > "$T/b.log" 2>&1 || rc=$?
kill "$HOLDER"
wait "$HOLDER" 2> /dev/null || true
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "b: baton run exited $rc: $(cat "$T/b.log")"
grep -q "metrics endpoint" "$T/b.log" || fail "b: the error does not name the metrics endpoint: $(cat "$T/b.log")"
keeper_holds "b"
echo "ok: b. exit $rc: $(grep -m1 "metrics endpoint" "$T/b.log" | sed 's/^.* error: //')"

# --- c. the control socket's path taken ------------------------------------------
rm -f "$SOCK" # the dead supervisor's
: > "$SOCK" # a regular file at the control socket's path: not ours to remove
rc=0
timeout 30 "$BATON" run "$SVC" > "$T/c.log" 2>&1 || rc=$?
rm -f "$SOCK"
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "c: baton run exited $rc: $(cat "$T/c.log")"
grep -q "control socket" "$T/c.log" || fail "c: the error does not name the control socket: $(cat "$T/c.log")"
! grep -q "taking its service back" "$T/c.log" || fail "c: the run took the service first: $(cat "$T/c.log")"
keeper_holds "c"
echo "ok: c. exit $rc: $(grep -m1 "control socket" "$T/c.log" | sed 's/^.* error: //')"

# --- d. a run that fails after the take ------------------------------------------
n_confirm=$(grep -c "did not confirm" "$T/sup.log" || true)
notify=$(ls "$XDG_RUNTIME_DIR"/$NAME.*.notify 2> /dev/null | head -1)
[ -n "$notify" ] || fail "d: no notify socket of the dead supervisor in $XDG_RUNTIME_DIR"
rm -f "$notify"
: > "$notify" # a regular file at the notify socket's path, which a takeover keeps
rc=0
timeout 30 "$BATON" run "$SVC" > "$T/d.log" 2>&1 || rc=$?
rm -f "$notify"
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "d: baton run exited $rc: $(cat "$T/d.log")"
grep -q "notify socket" "$T/d.log" || fail "d: the error does not name the notify socket: $(cat "$T/d.log")"
grep -q "taking its service back" "$T/d.log" || fail "d: the run did not take the service first: $(cat "$T/d.log")"
more() { [ "$(grep -c "did not confirm" "$T/sup.log" || true)" -gt "$n_confirm" ]; }
wait_for 5 more || fail "d: the keeper did not say the taker left: $(tail -3 "$T/sup.log")"
keeper_holds "d"
echo "ok: d. exit $rc after the take: $(grep -m1 "notify socket" "$T/d.log" | sed 's/^.* error: //')"

# --- then a `baton run` takes the service back -----------------------------------
run_baton
wait_for 15 adopted_serving "$served" "$served_pid" ||
    fail "generation $served (pid $served_pid) not adopted: $(view_text) $(tail -5 "$T/sup.log")"
wait_for 10 gone "$keeper" "$kticks" || fail "the old keeper $keeper still runs after the hand-over"
grep -q "the keeper of the supervisor before this one lets go" "$T/sup.log" ||
    fail "no word of the old keeper letting go"
view
[ "$VKEEPER" != - ] && [ "$VKEEPER" != "$keeper" ] || fail "no new keeper: $VKEEPER"
kids=$(ps -o pid= --ppid "$BPID" | tr -d ' ' | tr '\n' ' ')
# shellcheck disable=SC2086 # one pid a word
track $kids
curl -sf -m 2 "http://127.0.0.1:$MPORT/metrics" > /dev/null || fail "no metrics on $MPORT after the takeover"
out=$("$BATON" restart -s "$SOCK") || fail "restart after the takeover: $out"
echo "$out" | grep -q "took over" || fail "restart: $out"
stop_load
assert_no_load_errors 500
stop_baton
wait_for 5 tracked_left || fail "left behind after baton stop:$LEFT"
echo "ok: the service taken back by the next baton run, restarted, stopped: $LOAD"
