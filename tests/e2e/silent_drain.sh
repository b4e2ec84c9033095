#!/usr/bin/env bash
# Silent drains (docs/steering.md): an app that exits at once on SIGTERM,
# cutting whatever it holds, and clients that rotate their keep-alive
# connections every second. With steer = true, 10 restarts under
# `graceful` fail no request and every drain ends by idleness (the old
# generation's weight went to 0, its clients moved on, and only then came
# the signal); the same run without steer loses requests.
. "$(dirname "$0")/lib.sh"
ROTATE="$(dirname "$0")/../apps/rotate_clients.py"
RESTARTS=${RESTARTS:-10}

run() { # STEER (true/false): prints the clients' line
    local steer=$1
    cat > "$T/service.lua" <<LUA
return {
  name = "e2e-silent",
  control = "$SOCK",
  listen = { http = { "tcp://127.0.0.1:0", steer = $steer } },
  command = { "$HELLO", "--exit-on-term" },
  ready_timeout = 5,
  drain_timeout = 20,
  policy = { "graceful" },
}
LUA
    start_baton
    rm -f "$T/stop"
    python3 "$ROTATE" "$PORT" 8 1 "$T/stop" > "$T/clients.out" &
    local cpid=$!
    sleep 1
    for i in $(seq 1 "$RESTARTS"); do
        out=$("$BATON" restart -s "$SOCK") || fail "restart $i ($steer): $out"
        sleep 1
    done
    # Every drain has ended (each within quiet's 10 s, or its deadline).
    wait_for 30 sh -c "[ \$('$BATON' events -s '$SOCK' --json | grep -o '\"kind\": *\"drain\"' | wc -l) -ge $RESTARTS ]" ||
        fail "not every drain ended ($steer)"
    touch "$T/stop"
    wait "$cpid" || fail "clients exited non-zero"
    "$BATON" events -s "$SOCK" --json > "$T/events.json"
    stop_baton
    cat "$T/clients.out"
}

res=$(run true)
echo "steered: $res"
ok=$(echo "$res" | tr ' ' '\n' | sed -n 's/^ok=//p')
failed=$(echo "$res" | tr ' ' '\n' | sed -n 's/^failed=//p')
[ "$failed" = 0 ] || fail "steered: $failed requests failed ($res)"
[ "$ok" -gt 1000 ] || fail "steered: too few requests ($res)"
idle=$(python3 -c '
import json, sys
ev = [e for e in json.load(open(sys.argv[1])) if e["kind"] == "drain"]
print(sum(1 for e in ev if "quiet: idle" in e["reason"]), len(ev))' "$T/events.json")
[ "$idle" = "$RESTARTS $RESTARTS" ] || fail "steered: drains ended by idleness / all: $idle"

res2=$(run false)
echo "shared socket: $res2"
failed2=$(echo "$res2" | tr ' ' '\n' | sed -n 's/^failed=//p')
[ "$failed2" -gt 0 ] || fail "without steer no request failed: the test shows no difference ($res2)"
echo "ok: steered $res; shared socket $res2"
