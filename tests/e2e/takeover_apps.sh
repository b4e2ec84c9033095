#!/usr/bin/env bash
# `baton upgrade` and the takeover after a SIGKILL of the supervisor
# (docs/takeover.md) with apps nobody on the team wrote, from Debian:
# gunicorn (a master and 2 workers; its socket from LISTEN_FDS, READY=1 of
# its own) and the Node server tests/apps/node_http.js (no READY=1: a probe
# of its per-generation health listener). For each, under keep-alive and
# new-connection load:
#   1. UPGRADES `baton upgrade`s to the same binary: each exits 0, the
#      supervisor keeps its pid, the app's generation (the same pid) stays
#      the active one.
#   2. ROUNDS times: SIGKILL the supervisor (its processes tracked first),
#      `baton run` the same file again: the generation that served (the
#      same pid) is the active one, marked adopted, on the same port, and
#      the old keeper is gone; `baton restart` then takes over (exit 0), and
#      the adopted generation drains to its end: its processes (gunicorn's
#      master and both workers) are all gone, nothing leaks.
#   3. `baton stop`: no process of any supervisor along the way is left
#      (keepers, generations, workers). Not one failed request.
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"
command -v gunicorn > /dev/null || fail "gunicorn is not installed (scripts/deps.sh test)"
command -v node > /dev/null || fail "node is not installed (scripts/deps.sh test)"
UPGRADES=${UPGRADES:-3}
ROUNDS=${ROUNDS:-3}

# below PID: the processes below PID (children, theirs, ...), one a line.
below() {
    local c
    for c in $(ps -o pid= --ppid "$1" 2> /dev/null); do
        echo "$c"
        below "$c"
    done
}

ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# all_gone "PID:TICKS ...": none of these processes runs any more; LEFT
# names those that still do.
all_gone() {
    local w
    LEFT=""
    for w in $1; do
        if alive "${w%%:*}" "${w#*:}"; then LEFT+=" ${w%%:*}"; fi
    done
    [ -z "$LEFT" ]
}

# upgrades WHAT: UPGRADES times `baton upgrade` to the same binary; each
# exits 0, and the supervisor (its pid) and the serving generation (its
# pid) stay the same.
upgrades() {
    local i out act actpid t0
    view
    act=$VACT actpid=$VACTPID
    for i in $(seq 1 "$UPGRADES"); do
        t0=$(date +%s%N)
        out=$("$BATON" upgrade -s "$SOCK" 2>&1) || fail "$1 upgrade $i exited non-zero: $out"
        UPGRADE_MS+=" $(ms_since "$t0")"
        view || fail "$1 upgrade $i: no status"
        [ "$VPID" = "$BPID" ] || fail "$1 upgrade $i: status says pid $VPID, the supervisor is $BPID"
        kill -0 "$BPID" || fail "$1 upgrade $i: the supervisor $BPID is gone"
        [ "$VUPG" = "$i" ] || fail "$1 upgrade $i: image.upgrades is $VUPG"
        { [ "$VACT" = "$act" ] && [ "$VACTPID" = "$actpid" ]; } ||
            fail "$1 upgrade $i: $(view_text); generation $act (pid $actpid) served before"
        sleep 0.2
    done
}

# round WHAT: tracks the supervisor's processes, SIGKILLs it, starts
# another; checks that it took the generation back, that `baton restart`
# then takes over, and that the adopted generation's processes all end.
round() {
    local what=$1 before before_pid port old_keeper old_ticks n_adopt gen="" p out t0
    view
    before=$VACT before_pid=$VACTPID port=$VPORT old_keeper=$VKEEPER
    { [ "$VPID" = "$BPID" ] && [ "$before" != - ]; } || fail "$what: $(view_text)"
    old_ticks=$(start_ticks "$old_keeper")
    [ -n "$old_ticks" ] || fail "$what: no keeper runs (status says $old_keeper)"
    for p in "$before_pid" $(below "$before_pid"); do gen+=" $p:$(start_ticks "$p")"; done
    # shellcheck disable=SC2046 # one pid a word
    track $(below "$BPID")
    n_adopt=$(adoptions)
    t0=$(date +%s%N)
    kill -KILL "$BPID"
    wait "$BPID" 2> /dev/null || true # reaped, as a shell or service manager above would
    run_baton
    wait_for 10 adopted_serving "$before" "$before_pid" ||
        fail "$what: generation $before (pid $before_pid) not adopted as the active one: $(view_text)" \
            "$(grep "cannot be taken back" "$T/sup.log" | tail -1)"
    ADOPT_MS+=" $(ms_since "$t0")"
    [ "$VPORT" = "$port" ] || fail "$what: the listener is on port $VPORT, was $port"
    [ "$(adoptions)" = $((n_adopt + 1)) ] || fail "$what: no 'took over the service' line logged"
    wait_for 5 gone "$old_keeper" "$old_ticks" ||
        fail "$what: the old keeper $old_keeper still runs after the handover"
    out=$("$BATON" restart -s "$SOCK") || fail "$what: restart exited non-zero: $out"
    echo "$out" | grep -q "took over" || fail "$what: restart: $out"
    t0=$(date +%s%N)
    wait_for "$DRAIN_BOUND" all_gone "$gen" ||
        fail "$what: the adopted generation $before's processes still run ${DRAIN_BOUND} s after the restart:$LEFT" \
            "$(ps -o pid=,ppid=,stat=,args= -p "${LEFT# }" 2> /dev/null)"
    GONE_MS+=" $(ms_since "$t0")"
    # shellcheck disable=SC2086 # one word a process
    set -- $gen
    NGONE=$((NGONE + $#))
    sleep 0.2
}

# app WHAT MIN_OK: the whole sequence for the service in $T/service.lua.
app() {
    local what=$1 t0 ntracked i
    t0=$(date +%s%N)
    ntracked=$(wc -l < "$EXTRA")
    SOCK="$T/$what.sock"
    UPGRADE_MS="" ADOPT_MS="" GONE_MS="" NGONE=0
    : > "$T/sup.log"
    run_baton
    wait_for 20 has_active || fail "$what: the supervisor did not bring up an active generation"
    view
    PORT=$VPORT
    [ "$PORT" != - ] || fail "$what: no port in status"
    # shellcheck disable=SC2119 # the default load
    start_load
    upgrades "$what"
    for i in $(seq 1 "$ROUNDS"); do round "$what round $i"; done
    stop_load
    assert_no_load_errors "$2"
    # shellcheck disable=SC2046 # one pid a word
    track $(below "$BPID")
    ntracked=$(($(wc -l < "$EXTRA") - ntracked))
    stop_baton
    wait_for 10 tracked_left || fail "$what: left behind after baton stop:$LEFT"
    ! compgen -G "$XDG_RUNTIME_DIR/$what-takeover.*.carry" > /dev/null ||
        fail "$what: carried state left after baton stop: $(ls "$XDG_RUNTIME_DIR")"
    echo "ok: $what: $UPGRADES upgrades (ms:$UPGRADE_MS), $ROUNDS SIGKILLs adopted (ms:$ADOPT_MS)" \
        "and restarted, each adopted generation's $((NGONE / ROUNDS)) process(es) gone (ms after the restart:$GONE_MS)," \
        "stopped, none of the $ntracked processes tracked left; $(ms_since "$t0") ms; $LOAD"
}

SVC="$T/service.lua"
export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"

# --- gunicorn: a master with 2 workers, LISTEN_FDS, READY=1 of its own -------
cat > "$T/service.lua" <<LUA
return {
  name = "gunicorn-takeover",
  control = "$T/gunicorn.sock",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "gunicorn", "--workers", "2", "--graceful-timeout", "10",
              "--chdir", "$SOURCE_DIR/tests/apps", "hello_wsgi:app" },
  ready_timeout = 20,
  drain_timeout = 15,
}
LUA
DRAIN_BOUND=17
app gunicorn 300
grep -q "Listening at: http://127.0.0.1:$PORT " "$T/sup.log" ||
    fail "gunicorn did not take its socket from LISTEN_FDS"

# --- node: no READY=1, a probe of its own health listener -----------------------
cat > "$T/service.lua" <<LUA
return {
  name = "node-takeover",
  control = "$T/node.sock",
  listen = { { "http", "tcp://127.0.0.1:0" },
             { "health", "tcp://127.0.0.1:0", per_generation = true } },
  command = { "node", "$SOURCE_DIR/tests/apps/node_http.js" },
  drain_timeout = 20,
  policy = { "graceful", ready = { notify = false, timeout = 10,
                                   http = "http://127.0.0.1:{port:health}/" } },
}
LUA
DRAIN_BOUND=22
app node 1000
