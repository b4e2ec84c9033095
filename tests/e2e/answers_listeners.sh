#!/usr/bin/env bash
# 1,000 listeners end to end (issue 25):
# - `baton status --json` lists them all (each its own port, fds 3 to
#   1,002), `stats --json` has each one's accept queue; the text forms sum
#   the list up; every one of a sample of ports answers;
# - `baton restart` takes over, and the ports answer the new generation;
# - the supervisor SIGKILLed, a new `baton run` takes the listeners back
#   from the keeper and adopts the generation; `status --json` lists them
#   all again, the ports are the same, and a restart takes over.
# KEPT (default: all LISTENERS) sets how many listeners the SIGKILL part
# runs with.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"
CHATTY=$(readlink -f "$(dirname "$0")/../apps/chatty.py")
LISTENERS=${LISTENERS:-1000}
KEPT=${KEPT:-$LISTENERS}
export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
SVC="$T/service.lua"
echo "1 16" > "$T/mode"
service() { # N: a service with N listeners
    {
        echo "return { name = 'e2e-many', control = '$SOCK', ready_timeout = 20, drain_timeout = 5,"
        echo "  command = { 'python3', '$CHATTY', '$T/mode' }, listen = {"
        for i in $(seq 1 "$1"); do printf "    { 'l%04d', 'tcp://127.0.0.1:0' },\n" "$i"; done
        echo "} }"
    } > "$SVC"
}
# check_status N: status --json lists N listeners, l0001.. in order, fds
# 3.., ports distinct; their ports go to $T/ports.
check_status() {
    "$BATON" status -s "$SOCK" --json > "$T/status.json" || fail "status --json: $(head -c 300 "$T/status.json")"
    python3 - "$T/status.json" "$1" "$T/ports" <<'PY' || fail "status --json with $1 listeners"
import json, sys
st, n = json.load(open(sys.argv[1])), int(sys.argv[2])
ls = st["listeners"]
assert len(ls) == n, len(ls)
assert [l["name"] for l in ls] == ["l%04d" % (i + 1) for i in range(n)], "names"
assert [l["fd"] for l in ls] == list(range(3, 3 + n)), "fds"
ports = [int(l["address"].rsplit(":", 1)[1]) for l in ls]
assert len(set(ports)) == n and all(p > 0 for p in ports), "ports"
assert all("queue" in l and "max_queue" in l for l in ls), "queues"
open(sys.argv[3], "w").write("\n".join(map(str, ports)) + "\n")
print("status --json: %d listeners, %d bytes" % (n, len(json.dumps(st))))
PY
}
# answers: the first, the last and 30 other ports each answer "ok" (the
# app answers at accept: the client sends nothing, so nothing unread
# turns its close into a reset).
answers() {
    python3 - "$T/ports" <<'PY'
import random, socket, sys
ports = [int(p) for p in open(sys.argv[1])]
for p in [ports[0], ports[-1]] + random.sample(ports, min(30, len(ports))):
    s = socket.create_connection(("127.0.0.1", p), timeout=5)
    data = b""
    while True:
        b = s.recv(4096)
        if not b:
            break
        data += b
    assert data.endswith(b"ok\n"), (p, data)
PY
}

service "$LISTENERS"
: > "$T/sup.log"
run_baton
wait_for 60 has_active || fail "no active generation with $LISTENERS listeners"
check_status "$LISTENERS"
answers || fail "a port did not answer"
"$BATON" status -s "$SOCK" > "$T/status.txt" || fail "status"
grep -q "and $((LISTENERS - 19)) more listeners" "$T/status.txt" && grep -q ' active ' "$T/status.txt" ||
    fail "status text: $(head -c 600 "$T/status.txt")"
"$BATON" stats -s "$SOCK" --json > "$T/stats.json" || fail "stats --json"
[ "$(json_field kernel.listeners.$((LISTENERS - 1)).name < "$T/stats.json")" = "l$(printf %04d "$LISTENERS")" ] ||
    fail "stats --json: no queue for each listener"
"$BATON" stats -s "$SOCK" | grep -q "^  $LISTENERS listeners: [0-9]* waiting" || fail "stats text: no sum of the listeners"
echo "ok: status and stats with $LISTENERS listeners"

old=$(active_generation)
out=$("$BATON" restart -s "$SOCK") || fail "restart with $LISTENERS listeners: $out"
new=$(active_generation)
[ "$new" != "$old" ] || fail "restart did not take over: $out"
cp "$T/ports" "$T/ports.before"
check_status "$LISTENERS"
cmp -s "$T/ports" "$T/ports.before" || fail "the ports changed across the restart"
answers || fail "a port did not answer after the restart"
echo "ok: a restart with $LISTENERS listeners took over ($out)"

if [ "$KEPT" != "$LISTENERS" ]; then
    stop_baton
    service "$KEPT"
    run_baton
    wait_for 60 has_active || fail "no active generation with $KEPT listeners"
fi
check_status "$KEPT"
cp "$T/ports" "$T/ports.before"
gen=$(active_generation)
wait_for 10 test -n "$(keeper_of)" || fail "no keeper"
# shellcheck disable=SC2046 # one pid a word
track $(ps -o pid= --ppid "$BPID")
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
run_baton
wait_for 60 adopted_serving "$gen" ||
    fail "generation $gen not adopted with $KEPT listeners: $(grep -i "keeper\|taken\|cannot" "$T/sup.log" | tail -3)"
check_status "$KEPT"
cmp -s "$T/ports" "$T/ports.before" || fail "the ports changed across the SIGKILL"
answers || fail "a port did not answer after the SIGKILL"
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart after the SIGKILL"
answers || fail "a port did not answer after the restart that followed the SIGKILL"
stop_baton
echo "ok: $KEPT listeners taken back after a SIGKILL of the supervisor, then a restart took over"
