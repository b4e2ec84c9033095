#!/usr/bin/env bash
# baton under a service manager, with a harness playing systemd's side
# (tests/apps/fake_systemd.py): it passes baton a listening socket named
# "http" (socket activation) and reads baton's sd_notify datagrams.
# - baton uses the passed socket instead of binding one: the service
#   answers on the harness's port, `baton status` shows it;
# - READY=1 once the first generation serves, STATUS= after a restart,
#   RELOADING=1 then READY=1 around a reload, STOPPING=1 at the stop, each
#   from baton's own pid;
# - a restart under load loses no request;
# - examples/systemd/ passes `systemd-analyze verify`.
. "$(dirname "$0")/lib.sh"

cat > "$T/service.lua" <<LUA
return {
  name = "e2e-systemd",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
}
LUA
python3 "$SOURCE_DIR/tests/apps/fake_systemd.py" "$T" "$BATON" "$T/service.lua" > "$T/sup.log" 2>&1 &
BPID=$!
said() { grep -q "^baton: .*$1" "$T/notify" 2>/dev/null; }
wait_for 15 said "READY=1" || fail "no READY=1: $(cat "$T/notify" 2>/dev/null)"
PORT=$(cat "$T/port")
"$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -q "\"address\":\"tcp://127.0.0.1:$PORT\"" ||
    fail "status does not show the passed socket on port $PORT"
grep -q "passed by the service manager" "$T/sup.log" || fail "the passed socket was not used"
curl -sf "http://127.0.0.1:$PORT/" > /dev/null || fail "the service does not answer on the passed socket"
echo "ok: serving on the socket the manager passed (port $PORT); $(grep -m1 READY "$T/notify")"

start_load
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart"
wait_for 5 said "STATUS=generation 2 took over" || fail "no STATUS= after the restart: $(cat "$T/notify")"
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload"
wait_for 5 said "READY=1|STATUS=reloaded" || fail "no READY=1 after the reload: $(cat "$T/notify")"
grep -q "^baton: RELOADING=1|MONOTONIC_USEC=[0-9]*|STATUS=reloading" "$T/notify" || fail "no RELOADING=1: $(cat "$T/notify")"
stop_load
assert_no_load_errors 100
"$BATON" stop -s "$SOCK" > /dev/null || fail "stop"
rc=0
wait "$BPID" || rc=$?
BPID=""
[ $rc -eq 0 ] || fail "baton exited $rc under the harness"
said "STOPPING=1" || fail "no STOPPING=1: $(cat "$T/notify")"
grep -v "^baton: " "$T/notify" && fail "a datagram not from baton's own pid"
echo "ok: under a service manager: $(tr '\n' ';' < "$T/notify" | cut -c1-300)"
# The example units pass systemd's own checker (with this build's paths).
if command -v systemd-analyze > /dev/null; then
    mkdir "$T/units"
    sed "s|/usr/local/bin/baton|$BATON|g; s|/etc/baton/hello.lua|$SOURCE_DIR/examples/systemd/hello.lua|" \
        "$SOURCE_DIR/examples/systemd/hello.service" > "$T/units/hello.service"
    cp "$SOURCE_DIR/examples/systemd/hello.socket" "$T/units/"
    systemd-analyze verify --man=no "$T/units/hello.service" "$T/units/hello.socket" > "$T/verify" 2>&1 ||
        fail "systemd-analyze verify: $(cat "$T/verify")"
    [ ! -s "$T/verify" ] || fail "systemd-analyze verify warned: $(cat "$T/verify")"
    echo "ok: examples/systemd passes systemd-analyze verify"
fi
echo "ok: socket activation and sd_notify, $LOAD"
