#!/usr/bin/env bash
# The keeper ends when nothing it holds still serves: the supervisor
# SIGKILLed (under load: not one request fails, the generation serves
# on), then its last generation killed while a detached helper of the app
# (its own session) still holds the app's stdout: the keeper exits within
# seconds, closing the listener, and a client is refused instead of
# waiting in an accept queue no one serves. The helper is left alone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"

export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
SVC="$T/service.lua"
cat > "$T/app.sh" <<SH
#!/bin/sh
setsid sleep 300 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &  # the app's stdout, not its listener
echo \$! > "$T/helper.pid"
exec "$HELLO" --mode-file "$T/mode"
SH
chmod +x "$T/app.sh"
hello_service
sed -i "s|command = {[^}]*}|command = { \"$T/app.sh\" }|" "$SVC"
: > "$T/sup.log"
run_baton
wait_for 15 has_active || fail "supervisor did not bring up an active generation"
view
PORT=$VPORT app=$VACTPID keeper=$VKEEPER
wait_for 5 test -s "$T/helper.pid" || fail "the app's helper did not start"
helper=$(cat "$T/helper.pid")
track "$helper" "$app" "$keeper"
kticks=$(start_ticks "$keeper") aticks=$(start_ticks "$app")
start_load
sleep 1
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
BPID=""
sleep 1
curl -sf -m 2 "http://127.0.0.1:$PORT/" > /dev/null || fail "the orphaned generation does not serve"
stop_load
assert_no_load_errors 200
alive "$keeper" "$kticks" || fail "the keeper ended while its generation serves"
kill -KILL "$app"
wait_for 5 gone "$app" "$aticks" || fail "generation pid $app did not end"
kill -0 "$helper" || fail "the detached helper $helper is gone: the test shows nothing"
wait_for 10 gone "$keeper" "$kticks" || fail "keeper $keeper still runs with no generation left (the helper holds the app's stdout)"
grep -q "the last generation is gone: closing the listeners" "$T/sup.log" || fail "the keeper did not say why it ended"
refused=$(python3 -c '
import socket, sys
s = socket.socket()
s.settimeout(3)
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    print("accepted")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print(e)' "$PORT")
[ "$refused" = refused ] || fail "a client on port $PORT: $refused, not refused"
echo "ok: the last generation gone, keeper $keeper ended though helper $helper holds the app's stdout; a client is refused; before: $LOAD"
kill "$helper"
