#!/usr/bin/env bash
# What a generation and the keeper hold is exactly what they are given,
# as the kernel under the test gives it (KERNEL_PROFILE, if any) and under
# the 5.4 and 5.10 profiles (tests/kernel/oldkernel: no close_range, or no
# CLOSE_RANGE_CLOEXEC, so the supervisor sheds or marks its fds by walking
# /proc/self/fd):
#   - each generation (the first, and one after a restart, when the
#     supervisor holds more) sees stdin, stdout, stderr, its listeners at 3
#     and 4 (TCP and unix) and the stats region at BATON_STATS_FD, and
#     nothing else: no fd of the supervisor's leaks into the app;
#   - the keeper holds the same kinds of fds under both, fd for fd.
. "$(dirname "$0")/lib.sh"
: "${OLDKERNEL:?}"
export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
cat > "$T/service.lua" <<LUA
return {
  name = "fd-layout-e2e",
  control = "$SOCK",
  listen = { { "http", "tcp://127.0.0.1:0" }, { "admin", "unix:$T/admin.sock" } },
  command = { "python3", "$SOURCE_DIR/tests/apps/report_fds.py", "$T/report.json" },
  ready_timeout = 10,
  drain_timeout = 5,
}
LUA

# fds_of PID: "fd=what" per open fd of PID, sorted by fd, inode numbers left out.
fds_of() {
    local f
    for f in "/proc/$1/fd/"*; do
        echo "${f##*/}=$(readlink "$f" 2> /dev/null | sed -e 's/\[.*//' -e 's/ (deleted)//')"
    done | sort -n
}
# app_fds: the report's "open" list, as fds_of prints it, or nothing yet.
app_fds() {
    python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
if r["generation"] != sys.argv[2]:
    sys.exit(1)
for fd in sorted(r["open"], key=int):
    print(fd + "=" + r["open"][fd])
print("stats=" + r["stats_fd"])' "$T/report.json" "$1" 2> /dev/null
}
have_report() { app_fds "$1" > /dev/null; }

# check_app GEN WHAT: generation GEN saw exactly stdio, 3 and 4 (sockets)
# and the stats region (a memfd, or an unlinked file where there is none).
check_app() {
    wait_for 15 have_report "$1" || fail "$2: no report from generation $1"
    local got stats want
    got=$(app_fds "$1")
    stats=$(echo "$got" | sed -n 's/^stats=//p')
    [ "$stats" = 5 ] || fail "$2: BATON_STATS_FD is '$stats', want 5 (after stdio and 2 listeners)"
    want=$(printf '%s\n' 0 1 2 3 4 5)
    [ "$(echo "$got" | grep -v '^stats=' | cut -d= -f1)" = "$want" ] ||
        fail "$2: generation $1 holds fds other than stdio, 2 listeners and the stats region: $(echo "$got" | tr '\n' ' ')"
    echo "$got" | grep -qx '3=socket:' && echo "$got" | grep -qx '4=socket:' ||
        fail "$2: fds 3 and 4 are not sockets: $(echo "$got" | tr '\n' ' ')"
    echo "$got" | grep -Eqx '5=(/memfd:baton-stats|/dev/shm/\.baton-stats-.*)' ||
        fail "$2: fd 5 is not the stats region: $(echo "$got" | tr '\n' ' ')"
    echo "$got" | grep -v '^stats=' | tr '\n' ' '
}

# layout LABEL [WRAPPER...]: runs the service (under WRAPPER), checks the
# first generation and one after a restart, and records into $T/LABEL.app
# and $T/LABEL.keeper what each held.
layout() {
    local label=$1 keeper
    shift
    rm -f "$T/report.json"
    "$@" "$BATON" run "$T/service.lua" > "$T/sup.log" 2>&1 &
    BPID=$!
    wait_for 15 has_active || fail "$label: no active generation"
    check_app 1 "$label" > "$T/$label.app" || exit 1
    "$BATON" restart -s "$SOCK" > /dev/null || fail "$label: restart failed"
    check_app 2 "$label, after a restart" > "$T/$label.app2" || exit 1
    cmp -s "$T/$label.app" "$T/$label.app2" ||
        fail "$label: generation 2 got $(cat "$T/$label.app2"), generation 1 $(cat "$T/$label.app")"
    keeper=$(keeper_of)
    [ -n "$keeper" ] || fail "$label: no keeper in status"
    fds_of "$keeper" > "$T/$label.keeper"
    echo "ok: $label: each generation holds $(cat "$T/$label.app"); the keeper $(wc -l < "$T/$label.keeper") fds"
    stop_baton
}

layout given
layout k54 "$OLDKERNEL" 5.4
grep -q "close_range (close_range: Function not implemented; walks /proc/self/fd)" "$T/sup.log" ||
    fail "under 5.4 the host line does not say close_range falls back: $(grep 'host:' "$T/sup.log")"
# 5.10: close_range is there, its CLOEXEC flag not yet (EINVAL). Under an
# older KERNEL_PROFILE, whose filter stays on, close_range is ENOSYS.
layout k510 "$OLDKERNEL" 5.10
case ",${KERNEL_PROFILE:-}," in
    *,[0-9]*) ;;
    *) grep -q "cloexec_range (close_range(CLOEXEC): Invalid argument; walks /proc/self/fd)" "$T/sup.log" ||
        fail "under 5.10 the host line does not say cloexec_range falls back: $(grep 'host:' "$T/sup.log")" ;;
esac
for k in k54 k510; do
    diff "$T/given.app" "$T/$k.app" > /dev/null || fail "the app's fds differ under $k: $(cat "$T/$k.app")"
    diff "$T/given.keeper" "$T/$k.keeper" > /dev/null ||
        fail "the keeper's fds differ under $k: $(diff "$T/given.keeper" "$T/$k.keeper" | tr '\n' ' ')"
done
echo "ok: under 5.4 and 5.10 the same: the app $(cat "$T/k54.app"), the keeper $(tr '\n' ' ' < "$T/k54.keeper")"
