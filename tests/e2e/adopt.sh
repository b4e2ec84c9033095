#!/usr/bin/env bash
# The supervisor is SIGKILLed; its generations serve on, and a new `baton
# run` of the same service takes them back (from the carried state in the
# runtime folder and the fds its keeper held):
#   a. ROUNDS times under keep-alive and new-connection load: SIGKILL the
#      supervisor, start it again: the generation that served is still the
#      active one, marked adopted, on the same port; its old keeper is
#      gone; `baton restart` then hands over (exit 0); baton.restarts
#      carries on (one more each round, never reset), http.requests never
#      goes down. Then one more SIGKILL and `baton stop` with the adopted
#      generation active: it ends cleanly, and no keeper or generation of
#      any supervisor killed along the way is left. Not one failed request.
#      Before the stop, the keeper itself is SIGKILLed: another starts, and
#      a death after that is still taken back, output pipes included.
#   b. The same as an ordinary user (uid 65534, runtime folder
#      /tmp/baton-65534): adoption takes no ptrace rights (run last, and
#      skipped when the test itself is not root: becoming another user
#      takes root).
#   c. A port held by a process no keeper answers for (supervisor and
#      keeper both SIGKILLed): `baton run` exits non-zero naming the pid of
#      the generation that holds the port; once that one is gone, a fresh
#      `baton run` serves on the port.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"
ROUNDS=${ROUNDS:-10}
NOBODY_ROUNDS=${NOBODY_ROUNDS:-10}
REAL_BATON=$(readlink -f "$BATON")
REAL_HELLO=$(readlink -f "$HELLO")
REAL_LOADGEN=$(readlink -f "$LOADGEN")

# counters: baton stats into CREQ (http.requests) and CRESTARTS
# (baton.restarts); a counter not counted yet is 0.
counters() {
    local j re
    j=$("$BATON" stats -s "$SOCK" --json | tr -d ' \n') || return 1
    CREQ=0 CRESTARTS=0
    re='"name":"http\.requests","type":"counter","value":([0-9]+)'
    [[ $j =~ $re ]] && CREQ=${BASH_REMATCH[1]}
    re='"name":"baton\.restarts","type":"counter","value":([0-9]+)'
    [[ $j =~ $re ]] && CRESTARTS=${BASH_REMATCH[1]}
    return 0
}

SVC="$T/service.lua"

# The keeper of the service NAME in the runtime folder RUNDIR, found by its
# command line (it is no child of ours once its supervisor is dead): its
# pid, or nothing. It answers at RUNDIR/NAME.keeper or, where services of
# one name are told apart, RUNDIR/NAME.HASH.keeper.
keeper_pid() {
    ps -eo pid=,args= | awk -v pre="baton-keeper keeper $1/$2." '
        { pid = $1; sub(/^ *[0-9]+ /, "") }
        index($0, pre) == 1 && substr($0, length(pre) + 1) ~ /^([0-9a-f]+\.)?keeper$/ { print pid }'
}
# carry_file RUNDIR NAME: the carried state the supervisor keeps, or nothing.
carry_file() {
    local f
    for f in "$1/$2.carry" "$1/$2".*.carry; do
        [ ! -e "$f" ] || echo "$f"
    done
}

# kill_and_adopt WHAT RUNDIR NAME: SIGKILLs the supervisor (whose processes
# are tracked first), starts another, and checks that it took the service
# back: the same generation active, marked adopted, on the same port, the
# old keeper gone and a new one, the counters where they were.
kill_and_adopt() {
    local what=$1 rundir=$2 name=$3 kids old_keeper old_ticks new_keeper n_adopt
    view
    local before=$VACT before_pid=$VACTPID port=$VPORT
    counters
    local req=$CREQ restarts=$CRESTARTS
    kids=$(ps -o pid= --ppid "$BPID" | tr -d ' ' | tr '\n' ' ')
    # shellcheck disable=SC2086 # one pid a word
    track $kids
    old_keeper=$(keeper_pid "$rundir" "$name")
    [ -n "$old_keeper" ] || fail "$what: no keeper of $name runs"
    case " $kids " in *" $old_keeper "*) ;; *) fail "$what: keeper $old_keeper is no child of $BPID" ;; esac
    old_ticks=$(start_ticks "$old_keeper")
    local carry
    carry=$(carry_file "$rundir" "$name")
    [ -n "$carry" ] || fail "$what: no carried state in $rundir for $name"
    [ "$(stat -c %a "$carry")" = 600 ] || fail "$what: $carry has mode $(stat -c %a "$carry")"
    n_adopt=$(adoptions)
    kill -KILL "$BPID"
    wait "$BPID" 2> /dev/null || true # reaped, as a shell or service manager above would
    run_baton
    wait_for 10 adopted_serving "$before" ||
        fail "$what: generation $before (pid $before_pid) not adopted as the active one: $(view_text)" \
            "$(grep "cannot be taken back" "$T/sup.log" | tail -1)"
    [ "$VACTPID" = "$before_pid" ] || fail "$what: the active generation is pid $VACTPID, was $before_pid"
    [ "$VPORT" = "$port" ] || fail "$what: the listener is on port $VPORT, was $port"
    [ "$VADOPTED_AT" != - ] || fail "$what: image.adopted_at is not set"
    [ "$(adoptions)" = $((n_adopt + 1)) ] || fail "$what: no 'took over the service' line logged"
    wait_for 5 gone "$old_keeper" "$old_ticks" ||
        fail "$what: the old keeper $old_keeper still runs after the handover"
    new_keeper=$(keeper_pid "$rundir" "$name")
    [ -n "$new_keeper" ] && [ "$new_keeper" != "$old_keeper" ] ||
        fail "$what: no new keeper (found '$new_keeper')"
    counters
    [ "$CRESTARTS" = "$restarts" ] || fail "$what: baton.restarts is $CRESTARTS after adoption, was $restarts"
    [ "$CREQ" -ge "$req" ] || fail "$what: http.requests went down, $req -> $CREQ"
}

# rounds N WHAT RUNDIR NAME: N times kill_and_adopt, then `baton restart`:
# it hands over, and baton.restarts is one more.
rounds() {
    local n=$1 what=$2 i out restarts
    counters
    restarts=$CRESTARTS
    for i in $(seq 1 "$n"); do
        kill_and_adopt "$what round $i" "$3" "$4"
        out=$("$BATON" restart -s "$SOCK") || fail "$what round $i: restart exited non-zero: $out"
        echo "$out" | grep -q "took over" || fail "$what round $i: restart: $out"
        counters
        [ "$CRESTARTS" = $((restarts + 1)) ] ||
            fail "$what round $i: baton.restarts is $CRESTARTS, want $((restarts + 1))"
        restarts=$CRESTARTS
        sleep 0.1
    done
}

# stop_and_check WHAT: one more SIGKILL and adoption, `baton stop` with the
# adopted generation active; then no tracked process is left.
stop_and_check() {
    kill_and_adopt "$1, before the stop" "$2" "$3"
    stop_load
    assert_no_load_errors 1000
    stop_baton
    wait_for 5 tracked_left || fail "$1: left behind after baton stop:$LEFT"
    [ -z "$(keeper_pid "$2" "$3")" ] || fail "$1: a keeper of $3 still runs after baton stop"
    [ -z "$(carry_file "$2" "$3")" ] || fail "$1: $(carry_file "$2" "$3") is left after baton stop"
}

# --- a. as root (or whoever runs the test) ------------------------------------
export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
NAME=adopt-e2e
cat > "$T/service.lua" <<LUA
return {
  name = "$NAME",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$REAL_HELLO", "--mode-file", "$T/mode" },
  ready_timeout = 5,
  drain_timeout = 10,
}
LUA
: > "$T/sup.log"
run_baton
wait_for 15 has_active || fail "supervisor did not bring up an active generation"
view
PORT=$VPORT
start_load
rounds "$ROUNDS" "a" "$XDG_RUNTIME_DIR" "$NAME"
LOAD_A_ROUNDS=$ROUNDS
# The keeper SIGKILLed while its supervisor lives: the supervisor says so,
# starts another (status names it), and hands it the listeners, the stats
# region and the running generation's pipes: a death after that is taken
# back as before, and the adopted generation's last words still reach
# `baton logs` through the pipes the new keeper held.
view
served=$VACT
keeper=$(keeper_pid "$XDG_RUNTIME_DIR" "$NAME")
ticks=$(start_ticks "$keeper")
kill -KILL "$keeper"
new_keeper() {
    view && [ "$VKEEPER" != - ] && [ "$VKEEPER" != "$keeper" ] &&
        [ "$(keeper_pid "$XDG_RUNTIME_DIR" "$NAME")" = "$VKEEPER" ]
}
wait_for 5 new_keeper || fail "a: no new keeper in status after keeper $keeper was killed"
wait_for 5 gone "$keeper" "$ticks" || fail "a: keeper $keeper still runs"
grep -q "the keeper (pid $keeper) exited (killed by signal 9)" "$T/sup.log" ||
    fail "a: the keeper's death is not logged: $(tail -3 "$T/sup.log")"
rounds 1 "a, keeper replaced" "$XDG_RUNTIME_DIR" "$NAME"
logs_drained() { "$BATON" logs -s "$SOCK" --gen "$served" | grep -q "Terminated: draining"; }
wait_for 5 logs_drained ||
    fail "a: generation $served's drain is not in baton logs: $("$BATON" logs -s "$SOCK" --gen "$served" | tail -3)"
echo "ok: a. the keeper killed, another started; generation $served adopted and drained, its output kept"
stop_and_check "a" "$XDG_RUNTIME_DIR" "$NAME"
echo "ok: a. $LOAD_A_ROUNDS SIGKILLs of the supervisor under load, each adopted and restarted, then a stop: $LOAD"

# --- c. a port held by a generation no keeper answers for -----------------------
NAME=adopt-e2e-held
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -e "s/name = \"adopt-e2e\"/name = \"$NAME\"/" -e "s|tcp://127.0.0.1:0|tcp://127.0.0.1:$PORT|" \
    "$T/service.lua" > "$T/service.held" && mv "$T/service.held" "$T/service.lua"
run_baton
wait_for 15 has_active || fail "c: supervisor did not bring up an active generation"
view
app=$VACTPID
app_ticks=$(start_ticks "$app")
# shellcheck disable=SC2046 # one pid a word
track $(ps -o pid= --ppid "$BPID")
keeper=$(keeper_pid "$XDG_RUNTIME_DIR" "$NAME")
[ -n "$keeper" ] || fail "c: no keeper of $NAME runs"
ticks=$(start_ticks "$keeper")
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
BPID=""
keeper_is() { [ "$(keeper_pid "$XDG_RUNTIME_DIR" "$NAME")" = "$1" ]; }
wait_for 5 keeper_is "$keeper" ||
    fail "c: keeper $keeper is not the one left: $(keeper_pid "$XDG_RUNTIME_DIR" "$NAME")"
kill -KILL "$keeper"
wait_for 5 gone "$keeper" "$ticks" || fail "c: keeper $keeper did not end"
curl -sf -m 2 "http://127.0.0.1:$PORT/" > /dev/null || fail "c: the orphaned generation does not serve"
rc=0
timeout 20 "$BATON" run "$SVC" > "$T/held.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "c: baton run exited $rc: $(cat "$T/held.log")"
grep -q "held by pid $app " "$T/held.log" ||
    fail "c: the error does not name pid $app: $(cat "$T/held.log")"
grep -q "cannot be taken back" "$T/held.log" || fail "c: no word of the keeper: $(cat "$T/held.log")"
echo "ok: c. exit $rc: $(grep -m1 "held by pid" "$T/held.log" | sed 's/^.* error: //')"
kill -KILL "$app"
wait_for 5 gone "$app" "$app_ticks" || fail "c: generation $app did not end"
run_baton
wait_for 15 has_active || fail "c: no fresh start once the port was free: $(tail -5 "$T/sup.log")"
curl -sf -m 2 "http://127.0.0.1:$PORT/" > /dev/null || fail "c: a fresh start does not serve on $PORT"
stop_baton
echo "ok: c. the port freed, a fresh baton run serves on it"

# --- b. as an ordinary user ----------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
    echo "skip: b. adoption as another user needs root to become one"
    exit 0
fi
NB_UID=65534
RD=/tmp/baton-$NB_UID
if [ -e "$RD" ] && [ "$(stat -c '%u %a' "$RD")" != "$NB_UID 700" ]; then
    fail "b. $RD exists but is not uid $NB_UID's with mode 0700: $(stat -c '%U %a' "$RD")"
fi
NAME=adopt-e2e-$$
NOBODY_FILES="$RD/$NAME.*" # the carried state, the keeper's and the notify socket
chmod 711 "$T"
NB="$T/nobody"
mkdir -m 700 "$NB"
chown "$NB_UID:$NB_UID" "$NB"
for tool in baton loadgen; do
    real=$REAL_BATON
    [ $tool = baton ] || real=$REAL_LOADGEN
    printf '#!/bin/sh\nexec setpriv --reuid=%s --regid=%s --clear-groups %s "$@"\n' \
        "$NB_UID" "$NB_UID" "$real" > "$T/$tool-as-nobody"
    chmod 755 "$T/$tool-as-nobody"
done
BATON="$T/baton-as-nobody"
LOADGEN="$T/loadgen-as-nobody"
SOCK="$NB/control.sock"
unset XDG_RUNTIME_DIR
cat > "$NB/service.lua" <<LUA
return {
  name = "$NAME",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$REAL_HELLO", "--mode-file", "$NB/mode" },
  ready_timeout = 5,
  drain_timeout = 10,
}
LUA
chown "$NB_UID:$NB_UID" "$NB/service.lua"
SVC="$NB/service.lua"
run_baton
wait_for 15 has_active || fail "b: supervisor did not bring up an active generation"
view
PORT=$VPORT
for p in "$BPID" "$VACTPID" "$(keeper_pid "$RD" "$NAME")"; do
    [ "$(ps -o uid= -p "$p" | tr -d ' ')" = "$NB_UID" ] || fail "b: pid $p runs as uid $(ps -o uid= -p "$p")"
done
yama=$(cat /proc/sys/kernel/yama/ptrace_scope 2> /dev/null || echo "none (no Yama)")
start_load
[ "$(ps -o uid= -p "$LPID" | tr -d ' ')" = "$NB_UID" ] || fail "b: the load does not run as uid $NB_UID"
rounds "$NOBODY_ROUNDS" "b" "$RD" "$NAME"
stop_and_check "b" "$RD" "$NAME"
echo "ok: b. as uid $NB_UID (runtime folder $RD, Yama ptrace_scope $yama): $NOBODY_ROUNDS SIGKILLs adopted and restarted, then a stop: $LOAD"
