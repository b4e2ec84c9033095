#!/usr/bin/env bash
# The keeper holds any number of fds (one a message, as many messages as
# it takes; it held at most 512 before): a service of N listeners (1,000:
# one TCP listener under load, the rest unix sockets, so that no port is
# raced for) is SIGKILLed and a new `baton run` takes every listener back
# from the keeper; `baton restart` then hands them all to a new
# generation, the old generation and the old keeper go, and every
# listener still accepts. Read from the log and the kernel, not from
# `baton status` (an answer this big is another matter). Not one request
# fails.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"
N=${N:-1000}

export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR" "$T/u"
SVC="$T/service.lua"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
{
    echo "return { name = 'many', control = '$SOCK', fdstore_max = 0, drain_timeout = 10,"
    echo "  command = { '$HELLO', '--mode-file', '$T/mode' },"
    echo "  listen = { { 'http', 'tcp://127.0.0.1:$PORT' },"
    for i in $(seq 2 "$N"); do echo "    { 'u$i', 'unix:$T/u/$i.sock' },"; done
    echo "  } }"
} > "$SVC"
: > "$T/sup.log"
# took N: the log says a generation took over N times.
took() { [ "$(grep -c "took over" "$T/sup.log" || true)" -ge "$1" ]; }
# every_listener: every one accepts a connection.
every_listener() {
    python3 - "$PORT" "$T/u" "$N" <<'PY'
import socket, sys
port, folder, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
bad = []
s = socket.create_connection(("127.0.0.1", port), timeout=3)
s.close()
for i in range(2, n + 1):
    u = socket.socket(socket.AF_UNIX)
    u.settimeout(3)
    try:
        u.connect(f"{folder}/{i}.sock")
    except OSError as e:
        bad.append(f"{i}: {e}")
    u.close()
if bad:
    print(len(bad), "refused:", bad[:3])
    sys.exit(1)
PY
}
sockets_of() { find "/proc/$1/fd" -lname 'socket:*' 2> /dev/null | wc -l; }

run_baton
wait_for 60 took 1 || fail "the first generation did not take over: $(tail -3 "$T/sup.log")"
start_load
kids=$(ps -o pid= --ppid "$BPID" | tr -d ' ' | tr '\n' ' ')
# shellcheck disable=SC2086 # one pid a word
track $kids
keeper=$(ps -o pid=,args= --ppid "$BPID" | awk '/baton-keeper/ { print $1 }')
[ -n "$keeper" ] || fail "no keeper"
kticks=$(start_ticks "$keeper")
held() { [ "$(sockets_of "$keeper")" -ge "$N" ]; }
wait_for 30 held || fail "the keeper holds $(sockets_of "$keeper") sockets, not $N"
echo "ok: keeper $keeper holds $(sockets_of "$keeper") sockets"
app=$(ps -o pid=,args= --ppid "$BPID" | awk '/hello_server/ { print $1 }')
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
run_baton
adopted() { grep -q "took over the service: 1 generation(s) adopted" "$T/sup.log"; }
wait_for 60 adopted || fail "not taken back: $(grep -E "cannot|error" "$T/sup.log" | tail -3)"
grep -q "taking its service back ($((N + 3)) fd(s) from its keeper)" "$T/sup.log" ||
    fail "not every fd taken back: $(grep -m1 "taking its service back" "$T/sup.log")"
wait_for 30 gone "$keeper" "$kticks" || fail "the old keeper $keeper still runs"
[ "$(sockets_of "$BPID")" -ge "$N" ] || fail "the new supervisor holds $(sockets_of "$BPID") sockets"
echo "ok: $(grep -m1 "taking its service back" "$T/sup.log" | sed 's/^.* info: //')"
kids=$(ps -o pid= --ppid "$BPID" | tr -d ' ' | tr '\n' ' ')
# shellcheck disable=SC2086 # one pid a word
track $kids
out=$(timeout 60 "$BATON" restart -s "$SOCK" 2>&1) || fail "restart after the takeover: $out"
app_gone() { ! kill -0 "$app" 2> /dev/null; }
wait_for 30 app_gone || fail "the adopted generation $app did not end"
every_listener || fail "not every listener accepts after the restart"
stop_load
assert_no_load_errors 200
echo "ok: $N listeners taken back after a SIGKILL and handed to a new generation; all accept; $LOAD"
stop_baton
