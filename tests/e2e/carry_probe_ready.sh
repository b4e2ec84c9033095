#!/usr/bin/env bash
# A restart whose new generation became ready by a probe, then a SIGKILL of
# the supervisor while the old generation still drains: the successor must
# adopt the new generation as the serving one.
#
# The carried state (RUNDIR/NAME.HASH.carry) is rewritten once per turn of
# the loop after an event that marks it. It once was marked by the loop's
# own events only (exits, notify messages, control requests), not by the
# timer, watch and probe events that reach the policy: a promotion made on
# a probe's answer left the file naming the old generation as the serving
# one and the new one as starting, until some later event. The successor
# then took the serving generation for a restart cut short and drained it,
# keeping the old one, itself already draining.
#
# So here nothing but the probe may come between the promotion and the kill:
# - the app (the example server) runs without NOTIFY_SOCKET: it sends
#   neither READY=1 nor, once told to drain, STOPPING=1; the policy reads
#   readiness from an HTTP probe of each generation's own health port only
#   (ready = { notify = false, http = ... });
# - the old generation cannot exit before the kill (an exit is an event):
#   a client of ours holds a request half sent to it, which its drain waits
#   for (drain_timeout 60);
# - `baton restart` is answered from the very turn that promoted.
# Then: SIGKILL the supervisor mid-drain, `baton run` again; `baton status
# --json` must show generation 2 active (the same pid, adopted), generation
# 1 draining (never generation 2); the held request is then answered by
# generation 1, which exits; the load client (keep-alive and new
# connections throughout) sees not one failed request; `baton stop` ends it
# all, nothing of the dead supervisor left.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"

export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
NAME=carry-probe-e2e
SVC="$T/service.lua"
# Health ports (BASE + generation) below the ephemeral range, where the load
# client's own connections could hold one (as in policies.sh).
low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
BASE=$((10000 + RANDOM % (low - 10100)))
cat > "$SVC" <<LUA
return {
  name = "$NAME",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "env", "-u", "NOTIFY_SOCKET", "$HELLO", "--mode-file", "$T/mode",
              "--health-port-base", "$BASE" },
  ready_timeout = 5,
  drain_timeout = 60,
  policy = { "default", ready = { notify = false, timeout = 5, interval = 0.05,
                                  http = "http://127.0.0.1:{generation+$BASE}/health" } },
}
LUA

# gens: "ID:STATE:PID ..." of `baton status --json` (read in the shell: a
# python3 a poll is slow on 2 cores under load).
gens() {
    "$BATON" status -s "$SOCK" --json | tr -d ' \n' |
        grep -o '"id":[0-9]*,"pid":[0-9]*,"state":"[a-z]*"' |
        sed 's/"id":\([0-9]*\),"pid":\([0-9]*\),"state":"\([a-z]*\)"/\1:\3:\2/' | tr '\n' ' '
}
# has_gen ID:STATE: status shows generation ID in STATE.
has_gen() { case " $(gens) " in *" $1:"*) return 0 ;; *) return 1 ;; esac }
# The carried state's generations ("ID:STATE ..."), for the messages.
carried() {
    local f
    for f in "$XDG_RUNTIME_DIR/$NAME".*.carry; do
        [ -e "$f" ] || continue
        python3 -c '
import json, sys
def walk(o):
    if isinstance(o, dict):
        if "id" in o and "state" in o:
            yield "%s:%s" % (o["id"], o["state"])
        for v in o.values():
            yield from walk(v)
    elif isinstance(o, list):
        for v in o:
            yield from walk(v)
print(" ".join(walk(json.load(open(sys.argv[1])))))' "$f" 2> /dev/null || echo "(unreadable)"
    done
}

run_baton
wait_for 15 has_active || fail "supervisor did not bring up an active generation"
view
PORT=$VPORT
[ "$VACT" = 1 ] || fail "generation $VACT serves, want 1"
start_load

# A request half sent to generation 1: its drain waits for it. A whole
# request first, whose answer names the generation that holds the
# connection.
cat > "$T/slow.py" <<'PY'
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
s.sendall(b"GET /first HTTP/1.1\r\nHost: e2e\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf or not buf.endswith(b"\n"):
    buf += s.recv(4096)
print("first:", buf.decode().splitlines()[-1], flush=True)
s.sendall(b"GET /held HTTP/1.1\r\nHost: e2e\r\n")  # no blank line yet
for _ in range(1200):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.05)
s.sendall(b"\r\n")
buf = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    buf += b
lines = buf.decode().splitlines()
print("held:", lines[0] if lines else "(nothing)", "|", lines[-1] if lines else "", flush=True)
PY
python3 "$T/slow.py" "$PORT" "$T/slow.go" > "$T/slow.out" 2>&1 &
SLOW=$!
track "$SLOW"
held_by_1() { grep -q "^first: hello from generation 1," "$T/slow.out"; }
wait_for 5 held_by_1 || fail "the held connection is not generation 1's: $(cat "$T/slow.out")"

# The restart: generation 2 is ready by the probe alone and promoted;
# generation 1 drains (held by our client).
out=$("$BATON" restart -s "$SOCK") || fail "baton restart exited non-zero: $out"
echo "$out" | grep -q "took over" || fail "restart: $out"
promoted() { view && [ "$VACT" = 2 ] && has_gen 1:draining; }
wait_for 5 promoted || fail "generation 2 is not active with 1 draining: $(gens)"
PID2=$VACTPID
before=$(gens)
carry_before=$(carried)

# SIGKILL mid-drain, every process of the dead supervisor tracked first.
# shellcheck disable=SC2046 # one pid a word
track $(ps -o pid= --ppid "$BPID")
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
run_baton
took_back() { [ "$(adoptions)" -ge 1 ] && view && [ "$VPID" = "$BPID" ]; }
wait_for 10 took_back || fail "the new supervisor did not take the service back: $(tail -3 "$T/sup.log")"
adopted_serving 2 "$PID2" ||
    fail "generation 2 (pid $PID2) is not the adopted active one: $(view_text); generations: $(gens);" \
        "before the kill: $before; carried then: $carry_before"
after=$(gens)
case " $after " in
    *" 2:active:$PID2 "*) ;;
    *) fail "generation 2 is not active with pid $PID2: $after" ;;
esac
case " $after " in *" 2:draining:"*) fail "generation 2 drains: $after" ;; esac
case " $after " in
    *" 1:draining:"* | *" 1:exited:"*) ;;
    *) fail "generation 1 is neither draining nor gone: $after" ;;
esac
echo "ok: before the kill: $before(carried: $carry_before); adopted: $after"

# The load goes on to the adopted generation; then the held request is
# answered by generation 1, which ends its drain.
sleep 1
touch "$T/slow.go"
wait "$SLOW" || fail "the held client failed: $(cat "$T/slow.out")"
grep -q "^held: HTTP/1.1 200 OK | hello from generation 1," "$T/slow.out" ||
    fail "the held request: $(cat "$T/slow.out")"
wait_for 10 has_gen 1:exited || fail "generation 1 did not exit once its last request was answered: $(gens)"
view
case "$VACT:$VACTPID" in "2:$PID2") ;; *) fail "after the drain: $(view_text)" ;; esac
stop_load
assert_no_load_errors 1000
stop_baton
wait_for 5 tracked_left || fail "left behind after baton stop:$LEFT"
echo "ok: generation 2 (pid $PID2), ready by its probe alone, adopted as the serving one after a SIGKILL mid-drain: $LOAD"
