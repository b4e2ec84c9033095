#!/usr/bin/env bash
# What steering costs, each figure against its baseline in the same run:
#   1. new-connection throughput and connect+request latency (loadgen
#      --close: one request per connection, the path the BPF program runs
#      on) through a steered listener split 50/50 between two generations,
#      against the same two generations sharing one socket;
#   2. how soon a weight change acts: from `baton restart` (a policy that
#      moves every new connection to the new generation the moment it is
#      ready) to the first of 20 connections in a row answered by the new
#      generation, steered (weights 0/100) against a shared socket (the old
#      generation stops accepting at its SIGTERM).
#   bench/steer.sh [SECONDS] [ROUNDS]     (default 10, 10)
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-10}
R=${2:-10}
. bench/lib.sh
bench_build
W=$(mktemp -d /tmp/baton-steer.XXXXXX)
BPID=""
cleanup() { kill_tree "$BPID"; rm -rf "$W"; }
trap cleanup EXIT

# A policy that keeps the old generation serving beside the new one at
# 50/50 (steered) or both accepting (shared): a fair split for (1).
cat > "$W/half.lua" <<'LUA'
local steps = require("baton.steps")
return steps.standard({ name = "half", restart = function(svc, old)
  local new, why = steps.ready_new(svc)
  if not new then return nil, why end
  if old and old:weight() ~= nil then new:weight(50); old:weight(50) end
  svc:promote(new)
  return new
end })
LUA
service() { # STEER POLICY
    cat > "$W/svc.lua" <<LUA
return { name = "steer-bench", control = "$W/ctl.sock",
  listen = { http = { "tcp://127.0.0.1:0", steer = $1 } },
  command = { "$HELLO" }, drain_timeout = 10, policy = $2 }
LUA
}
answers() { "$BATON" status -s "$W/ctl.sock" > /dev/null 2>&1; }
start() {
    "$BATON" run "$W/svc.lua" 2> "$W/sup.log" & BPID=$!
    wait_until 10 answers
    PORT=$("$BATON" status -s "$W/ctl.sock" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["listeners"][0]["address"].rsplit(":",1)[1])')
}
stop() { "$BATON" stop -s "$W/ctl.sock" > /dev/null; wait "$BPID" || true; BPID=""; }
field() { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

load() { # STEER: prints "rps p50_us p99_us"
    service "$1" '"half.lua"'
    start
    "$BATON" restart -s "$W/ctl.sock" > /dev/null
    local out
    out=$("$LOADGEN" --port "$PORT" --keepalive 0 --close 16 --duration "$S" | grep '^loadgen:')
    stop
    [ "$(field resets "$out")" = 0 ] && [ "$(field connect_errors "$out")" = 0 ] || { echo "errors: $out" >&2; exit 1; }
    echo "$(( $(field ok "$out") / S )) $(field p50_us "$out") $(field p99_us "$out")"
}
read -r base_rps base_p50 base_p99 <<< "$(load false)"
read -r st_rps st_p50 st_p99 <<< "$(load true)"

# (2): per round, restart and poll new connections until 20 in a row
# reach the new generation; ms from the restart's start.
act() { # STEER: prints the median and the worst over R rounds
    service "$1" '{ "graceful", quiet = 0 }'
    start
    for _ in $(seq 1 "$R"); do
        python3 - "$PORT" "$BATON" "$W/ctl.sock" <<'PY'
import socket, subprocess, sys, time
port, baton, sock = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def gen():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
    d = b""
    while True:
        b = s.recv(4096)
        if not b: break
        d += b
    s.close()
    return int(d.split(b"generation ", 1)[1].split(b",", 1)[0])
before = gen()
t0 = time.monotonic()
p = subprocess.Popen([baton, "restart", "-s", sock], stdout=subprocess.DEVNULL)
run, first = 0, None
while run < 20 and time.monotonic() - t0 < 30:
    try:
        g = gen()
    except OSError:
        continue
    if g > before:
        first = first or time.monotonic()
        run += 1
    else:
        run, first = 0, None
p.wait()
print(int((first - t0) * 1000) if first else 99999)
PY
        sleep 0.3
    done > "$W/act.txt"
    stop
    echo "$(median < "$W/act.txt") $(sort -n "$W/act.txt" | tail -1)"
}
read -r base_act base_act_max <<< "$(act false)"
read -r st_act st_act_max <<< "$(act true)"

ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / max(float(sys.argv[2]), 1e-9)))" "$1" "$2"; }
echo "new connections, one request each, ${S}s, two generations:"
echo "  shared socket:   $base_rps req/s, p50 ${base_p50} us, p99 ${base_p99} us"
echo "  steered (50/50): $st_rps req/s, p50 ${st_p50} us, p99 ${st_p99} us"
echo "  ratio steered/shared: throughput $(ratio "$st_rps" "$base_rps"), p50 $(ratio "$st_p50" "$base_p50"), p99 $(ratio "$st_p99" "$base_p99")"
echo "restart to 20 new connections in a row on the new generation, $R rounds:"
echo "  shared socket: median ${base_act} ms, worst ${base_act_max} ms"
echo "  steered:       median ${st_act} ms, worst ${st_act_max} ms"
echo "  ratio steered/shared (median): $(ratio "$st_act" "$base_act")"
