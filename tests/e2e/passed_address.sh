#!/usr/bin/env bash
# A socket a service manager passes under a listener's name but bound to
# another address than the service file's is used, with a warning naming
# both (tests/apps/fake_systemd.py plays the manager: it binds a free
# loopback port and passes it as "http"):
#   a. the service file names another port: warned; the service serves on
#      the passed socket, a restart under load loses no request;
#   b. another host (127.0.0.2): warned;
#   c. port 0 on the same host (any port will do): no warning.
. "$(dirname "$0")/lib.sh"
OTHER=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# run_managed ADDRESS: baton under the fake manager with "http" at ADDRESS
# in the service file, until it serves; PORT the passed socket's.
run_managed() {
    cat > "$T/service.lua" <<LUA
return {
  name = "e2e-passed",
  control = "$SOCK",
  listen = { http = "$1" },
  command = { "$HELLO" },
}
LUA
    rm -f "$T/port" "$T/notify" "$T/notify.sock"
    : > "$T/sup.log"
    python3 "$SOURCE_DIR/tests/apps/fake_systemd.py" "$T" "$BATON" "$T/service.lua" > "$T/sup.log" 2>&1 &
    BPID=$!
    said() { grep -q "^baton: .*READY=1" "$T/notify" 2> /dev/null; }
    wait_for 15 said || fail "$1: no READY=1: $(tail -3 "$T/sup.log")"
    PORT=$(cat "$T/port")
    grep -q "passed by the service manager" "$T/sup.log" || fail "$1: the passed socket was not used"
}
stop_managed() {
    "$BATON" stop -s "$SOCK" > /dev/null || fail "baton stop"
    wait "$BPID" || true
    BPID=""
}
warned() { grep "the socket the service manager passed under this name is bound to" "$T/sup.log"; }

# --- a. another port ----------------------------------------------------------------
run_managed "tcp://127.0.0.1:$OTHER"
w=$(warned) || fail "a: no warning for a socket on port $PORT where the file says $OTHER"
case "$w" in *"bound to tcp://127.0.0.1:$PORT, the service file says tcp://127.0.0.1:$OTHER"*) ;;
    *) fail "a: the warning does not name both addresses: $w" ;; esac
start_load
"$BATON" restart -s "$SOCK" > /dev/null || fail "a: restart"
stop_load
assert_no_load_errors 100
stop_managed
echo "ok: a. ${w#* warn: }; a restart under load: $LOAD"

# --- b. another host ----------------------------------------------------------------
run_managed "tcp://127.0.0.2:0"
w=$(warned) || fail "b: no warning for a socket on 127.0.0.1 where the file says 127.0.0.2"
stop_managed
echo "ok: b. ${w#* warn: }"

# --- c. the same host, port 0 -------------------------------------------------------
run_managed "tcp://127.0.0.1:0"
! warned > /dev/null || fail "c: a warning for a socket where the file asks any port: $(warned)"
stop_managed
echo "ok: c. the same host with port 0: no warning"
