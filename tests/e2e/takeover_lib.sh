# shellcheck shell=bash
# Shared by the tests of a supervisor's death and takeover (adopt.sh,
# takeover_apps.sh); sourced after lib.sh.
#
# After a SIGKILL the generations and the keeper are no longer below BPID,
# so kill_tree "$BPID" would miss them: every process of a supervisor about
# to be killed goes into $T/extra.pids (pid and start time, so that a pid
# reused meanwhile by someone else's process is never touched), and the
# cleanup ends those still running, by pid. NOBODY_FILES: paths (a glob)
# the cleanup also removes.
EXTRA="$T/extra.pids"
: > "$EXTRA"
NOBODY_FILES=""
start_ticks() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2> /dev/null || true; }
track() {
    local p
    for p in "$@"; do echo "$p $(start_ticks "$p")" >> "$EXTRA"; done
}
# alive PID TICKS: the same process still runs (a zombie counts as gone).
alive() {
    [ -n "$2" ] && [ "$(start_ticks "$1")" = "$2" ] &&
        [ "$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2> /dev/null)" != Z ]
}
gone() { ! alive "$@"; }
takeover_cleanup() {
    local rc=$? pid ticks pids=""
    set +e
    while read -r pid ticks; do
        [ "$(start_ticks "$pid")" = "$ticks" ] && pids+=" $pid"
    done < "$EXTRA"
    # shellcheck disable=SC2086 # one pid a word
    kill_tree "$BPID" $pids
    # shellcheck disable=SC2086 # one path a word
    [ -z "$NOBODY_FILES" ] || rm -f $NOBODY_FILES
    (exit $rc)
    cleanup # lib.sh's: the load, the supervisor's tree, the log, $T
}
trap takeover_cleanup EXIT
# tracked_left: no tracked process runs any more; LEFT names those that do.
tracked_left() {
    local pid ticks
    LEFT=""
    while read -r pid ticks; do
        if alive "$pid" "$ticks"; then LEFT+=" $pid($(ps -o args= -p "$pid"))"; fi
    done < "$EXTRA"
    [ -z "$LEFT" ]
}

# view: baton status into VPID (the supervisor's), VUPG (image.upgrades),
# VKEEPER (image.keeper), VACT and VACTPID (the active generation), VADOPTED
# (1: it is marked adopted), VPORT (the first listener's) and VADOPTED_AT
# (image.adopted_at); "-": none. Parsed in the shell: a python3 per call
# costs half a second on 2 cores under load.
# shellcheck disable=SC2034 # the V variables are the callers'
view() {
    local j re
    j=$("$BATON" status -s "$SOCK" --json | tr -d ' \n') || return 1
    VPID=- VUPG=- VKEEPER=- VACT=- VACTPID=- VADOPTED=0 VPORT=- VADOPTED_AT=-
    re='^\{"ok":true,"service":"[^"]*","pid":([0-9]+),'
    [[ $j =~ $re ]] && VPID=${BASH_REMATCH[1]}
    re='"id":([0-9]+),"pid":([0-9]+),"state":"active"[^}]*'
    if [[ $j =~ $re ]]; then
        VACT=${BASH_REMATCH[1]} VACTPID=${BASH_REMATCH[2]}
        [[ ${BASH_REMATCH[0]} != *'"adopted":true'* ]] || VADOPTED=1
    fi
    re='"address":"tcp://127\.0\.0\.1:([0-9]+)"'
    [[ $j =~ $re ]] && VPORT=${BASH_REMATCH[1]}
    re='"upgrades":([0-9]+)'
    [[ $j =~ $re ]] && VUPG=${BASH_REMATCH[1]}
    re='"keeper":([0-9]+)'
    [[ $j =~ $re ]] && VKEEPER=${BASH_REMATCH[1]}
    re='"adopted_at":([0-9.e+]+)'
    [[ $j =~ $re ]] && VADOPTED_AT=${BASH_REMATCH[1]}
    return 0
}
view_text() { echo "supervisor $VPID, active generation $VACT (pid $VACTPID, adopted $VADOPTED), port $VPORT"; }

# run_baton: `baton run $SVC` in the background, its output appended to
# $T/sup.log; BPID.
run_baton() {
    "$BATON" run "$SVC" >> "$T/sup.log" 2>&1 &
    BPID=$!
}
# adopted_serving ID [PID]: the new supervisor answers, and generation ID
# (process PID) is the active one, adopted.
adopted_serving() {
    view && [ "$VPID" = "$BPID" ] && [ "$VACT" = "$1" ] && [ "$VADOPTED" = 1 ] &&
        { [ -z "${2:-}" ] || [ "$VACTPID" = "$2" ]; }
}
adoptions() { grep -c "took over the service: [0-9]* generation(s) adopted" "$T/sup.log" || true; }
