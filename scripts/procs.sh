# Ending the processes a script started, by pid: never by a name or a
# command-line pattern, which also hits whatever else on the machine
# matches. Sourced by bench/lib.sh and tests/e2e/lib.sh.
# shellcheck shell=bash

# kill_tree PID...: SIGKILL each PID and every process below it (children,
# their children, ...: a supervisor's generations and what they started).
# Empty arguments and pids already gone are skipped. Each process is stopped
# (SIGSTOP) before its children are read, so none can start another in
# between; the tree is read twice, for orphans the kernel re-parented to a
# stopped subreaper (baton is one) during the first pass; then every process
# found is killed at once. Always returns 0: it is meant for cleanup traps.
kill_tree() {
    local root pids=""
    for root in "$@"; do
        [ -n "$root" ] || continue
        pids+=" $(_procs_stop_tree "$root") $(_procs_stop_tree "$root")"
    done
    # shellcheck disable=SC2086 # one pid a word
    [ -z "${pids// /}" ] || kill -KILL $pids 2> /dev/null || true
    return 0
}

# _procs_stop_tree PID: stops PID, prints it and, depth first, its tree.
_procs_stop_tree() {
    local child
    kill -STOP "$1" 2> /dev/null || return 0
    echo "$1"
    for child in $(ps -o pid= --ppid "$1" 2> /dev/null); do
        _procs_stop_tree "$child"
    done
}
