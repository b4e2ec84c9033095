#!/usr/bin/env bash
# Malformed control requests, a client of another user, garbage and forged
# datagrams on the notify socket: each gets an error or is dropped, and the
# service keeps serving under load without a single failed request.
. "$(dirname "$0")/lib.sh"

hello_service
start_baton
start_load

[ "$(stat -c %a "$SOCK")" = 600 ] || fail "control socket mode is $(stat -c %a "$SOCK"), want 600"

# Raw requests on the control socket; each must get a JSON error line.
ask() {
    python3 - "$SOCK" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
payload = sys.argv[2].encode().decode("unicode_escape").encode("latin-1")
try:
    s.sendall(payload)
    s.shutdown(socket.SHUT_WR)
except (BrokenPipeError, ConnectionResetError):
    pass
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except ConnectionResetError:
    pass
print(data.decode(errors="replace").strip())
PY
}
expect_error() {
    local out
    out=$(ask "$1")
    echo "$out" | grep -q '"ok":false' || fail "request '$1': want an error, got: $out"
    echo "$out" | grep -q "$2" || fail "request '$1': want '$2' in: $out"
    echo "ok: $(echo "$1" | cut -c1-30) -> $out"
}
expect_error 'not json\n' 'bad request'
expect_error '[1,2,3]\n' 'not a JSON object'
expect_error '{"nocmd":1}\n' 'no \\"cmd\\" string'
expect_error '{"cmd":"format-disk"}\n' "unknown command 'format-disk'"
expect_error '{"cmd":42}\n' 'no \\"cmd\\" string'
expect_error "$(head -c 70000 /dev/zero | tr '\0' 'x')" 'longer than 65536 bytes'
expect_error '\x00\xff\xfe{"cmd":\n' 'bad request'

# Another user: the socket is 0600; even opened up, SO_PEERCRED refuses.
# (Becoming another user takes root; CI is root.)
if [ "$(id -u)" = 0 ]; then
    chmod 711 "$T"
    chmod 666 "$SOCK"
    out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$BATON" status -s "$SOCK" 2>&1) &&
        fail "nobody got status: $out"
    echo "$out" | grep -q "permission denied" || fail "other user: $out"
    chmod 600 "$SOCK"
    chmod 700 "$T"
    echo "ok: other user refused"
else
    echo "skip: refusing another user needs root to become one"
fi

# The notify socket: garbage, oversized, and a READY=1 from a process that
# is no generation of ours.
gen_pid=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | grep -o '"pid":[0-9]*,"state":"active"' | sed 's/"pid":\([0-9]*\).*/\1/')
notify=$(tr '\0' '\n' < "/proc/$gen_pid/environ" | sed -n 's/^NOTIFY_SOCKET=//p')
[ -S "$notify" ] || fail "no notify socket at '$notify'"
[ "$(stat -c %a "$notify")" = 600 ] || fail "notify socket mode $(stat -c %a "$notify")"
python3 - "$notify" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for msg in [b"garbage without equals", b"READY=1\x00hidden", b"STATUS=" + b"x" * 9000,
            b"MAINPID=not-a-number", b"READY=1\nSTATUS=forged by a stranger"]:
    s.sendto(msg, sys.argv[1])
PY
sleep 0.3
grep -q "dropped a datagram .*malformed" "$T/sup.log" || fail "malformed datagram not reported"
grep -q "dropped a datagram .*NUL byte" "$T/sup.log" || fail "NUL datagram not reported"
grep -q "dropped a datagram .*too long" "$T/sup.log" || fail "long datagram not reported"
grep -q "which is no generation of ours" "$T/sup.log" || fail "forged READY not refused"
"$BATON" status -s "$SOCK" | grep -q "forged" && fail "a stranger's STATUS reached the table"

# After all that, restarts still work and no request failed.
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart after hostile input failed"
stop_load
assert_no_load_errors 1000
stop_baton
echo "ok: hostile input, $LOAD"
