#!/usr/bin/env bash
# `user`, `group` and `limits` in the service file. A user the system does
# not have is refused by `baton check`. As root: each generation runs as
# uid 65534 (nobody) with its supplementary groups and the limits given;
# its READY=1 and its stats reach the supervisor; the notify socket is
# that user's alone (the socket 0600 and its folder 0700, both owned by
# it: another unprivileged user cannot send to it); restarts under load
# lose nothing. Skipped (77) when not root.
. "$(dirname "$0")/lib.sh"

cat > "$T/bad.lua" <<LUA
return { control = "$SOCK", command = { "$HELLO" }, user = "baton-no-such-user" }
LUA
rc=0
out=$("$BATON" check "$T/bad.lua" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "check of an unknown user exited $rc: $out"
echo "$out" | grep -q "bad.lua:1: key 'user': no user baton-no-such-user on this system" || fail "check said: $out"
echo "ok: $out"
cat > "$T/bad.lua" <<LUA
return { control = "$SOCK", command = { "$HELLO" }, limits = { nofiles = 10 } }
LUA
"$BATON" check "$T/bad.lua" > /dev/null 2>&1 && fail "check took an unknown limit"

if [ "$(id -u)" != 0 ]; then
    echo "skip: running a generation as another user needs root"
    exit 77
fi
getent passwd 65534 > /dev/null || { echo "skip: no user 65534"; exit 77; }
command -v setpriv > /dev/null || { echo "skip: no setpriv (util-linux)"; exit 77; }
# The system's python for another user (a pyenv shim under /root is not theirs).
SYSPY=/usr/bin/python3
[ -x "$SYSPY" ] || { echo "skip: no $SYSPY"; exit 77; }

cat > "$T/service.lua" <<LUA
return {
  name = "as-user",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  user = 65534,
  limits = { nofile = 4096, core = 0, nproc = { 1000, 2000 } },
}
LUA
"$BATON" check "$T/service.lua" > /dev/null || fail "check refused user 65534"
start_baton
pid=$(status_field 'generations[state=active].pid')
uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
[ "$uids" = "65534 65534 65534 65534" ] || fail "generation runs as uid $uids"
gid=$(getent passwd 65534 | cut -d: -f4)
gids=$(awk '/^Gid:/ { print $2 }' "/proc/$pid/status")
[ "$gids" = "$gid" ] || fail "generation runs as gid $gids, want $gid"
groups=$(awk '/^Groups:/ { $1 = ""; print }' "/proc/$pid/status" | xargs)
want=$(id -G "$(getent passwd 65534 | cut -d: -f1)" | tr ' ' '\n' | sort -n | xargs)
[ "$(echo "$groups" | tr ' ' '\n' | sort -n | xargs)" = "$want" ] || fail "groups '$groups', want '$want'"
grep -q "^Max open files *4096 *4096" "/proc/$pid/limits" || fail "nofile: $(grep 'open files' "/proc/$pid/limits")"
grep -q "^Max core file size *0 *0" "/proc/$pid/limits" || fail "core: $(grep 'core' "/proc/$pid/limits")"
grep -q "^Max processes *1000 *2000" "/proc/$pid/limits" || fail "nproc: $(grep 'Max processes' "/proc/$pid/limits")"
echo "ok: generation 1 runs as uid 65534, gid $gid, groups '$groups', with nofile 4096, core 0, nproc 1000/2000"

# Its notify socket: that user's alone.
nsock=$(tr '\0' '\n' < "/proc/$pid/environ" | sed -n 's/^NOTIFY_SOCKET=//p')
[ -S "$nsock" ] || fail "no notify socket at '$nsock'"
[ "$(stat -c '%u %a' "$nsock")" = "65534 600" ] || fail "notify socket: $(stat -c '%u %a' "$nsock")"
[ "$(stat -c '%u %a' "$(dirname "$nsock")")" = "65534 700" ] || fail "its folder: $(stat -c '%u %a' "$(dirname "$nsock")")"
rc=0
setpriv --reuid=1 --regid=1 --clear-groups "$SYSPY" -c '
import socket, sys
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", sys.argv[1])' "$nsock" 2> "$T/other.err" || rc=$?
[ $rc -ne 0 ] && grep -q "PermissionError" "$T/other.err" || fail "uid 1 could send to the notify socket: rc $rc $(cat "$T/other.err")"
echo "ok: notify socket $nsock: 0600 in a 0700 folder, both uid 65534's; uid 1 is refused"

start_load
for i in 1 2 3 4 5; do
    "$BATON" restart -s "$SOCK" > /dev/null || fail "restart $i failed"
done
stop_load
assert_no_load_errors 500
active_is 6 || fail "generation 6 does not serve"
# Its counters reached the shared stats region.
"$BATON" stats -s "$SOCK" --json | json_field 'metrics[name=http.requests].value' > "$T/req" ||
    fail "no http.requests in stats"
[ "$(cat "$T/req")" -ge "$(load_field ok)" ] || fail "http.requests $(cat "$T/req") < $(load_field ok) responses"
echo "ok: 5 restarts as uid 65534 under load, stats from the app: http.requests=$(cat "$T/req"); $LOAD"
# A SIGKILL of the supervisor: a new run adopts generation 6 though it
# runs as another user than the supervisor (the carried pid is checked
# against both).
gen6=$(status_field 'generations[state=active].pid')
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
start_baton
[ "$(status_field 'generations[state=active].pid')" = "$gen6" ] ||
    fail "generation 6 (pid $gen6) was not adopted: $(grep -i 'gone\|adopt' "$T/sup.log")"
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart after the adoption failed"
active_is 7 || fail "generation 7 does not serve after the adoption"
[ ! -e "$(dirname "$nsock")" ] || fail "the dead supervisor's notify folder $(dirname "$nsock") was left"
pid=$(status_field 'generations[state=active].pid')
nsock=$(tr '\0' '\n' < "/proc/$pid/environ" | sed -n 's/^NOTIFY_SOCKET=//p')
[ "$(stat -c '%u %a' "$nsock")" = "65534 600" ] || fail "new notify socket: $(stat -c '%u %a' "$nsock")"
echo "ok: after a SIGKILL, generation 6 (uid 65534) adopted, its old notify folder removed, then a restart (notify socket $nsock)"
dir=$(dirname "$nsock")
stop_baton
[ ! -e "$dir" ] || fail "the notify socket's folder $dir outlived the supervisor"
echo "ok: its folder went with the supervisor"
