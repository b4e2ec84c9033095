#!/usr/bin/env bash
# What a graceful drain that waits for idleness costs the supervisor while
# the old generation holds C idle keep-alive connections (C = 0, 50, 1000
# by default), against the same C connections held with no drain at all,
# in the same run: the supervisor's CPU (utime + stime from /proc/PID/stat)
# over SECONDS, as a share of one core. Goal (issue 25): under 1 % with
# 1,000 idle connections held.
# The app is tests/apps/node_http.js, which keeps idle keep-alive
# connections open while it drains (LINGER: and keeps running after), so
# only the client's close can end the drain; the policy is `graceful`
# (polls the kernel's count of the generation's connections).
#   bench/drain_cost.sh [SECONDS] [C...]     (default 10; 0 50 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
S=${1:-10}
shift || true
[ $# -gt 0 ] || set -- 0 50 1000
. bench/lib.sh
bench_build
command -v node > /dev/null || { echo "drain_cost: node is not installed (scripts/deps.sh test)"; exit 1; }
ulimit -n 8192
W=$(mktemp -d /tmp/baton-drain-cost.XXXXXX)
BPID="" HPID=""
cleanup() { kill_tree "$HPID" "$BPID"; rm -rf "$W"; }
trap cleanup EXIT
cat > "$W/svc.lua" <<LUA
return { name = "drain-cost", control = "$W/ctl.sock",
  listen = { { "http", "tcp://127.0.0.1:0" }, { "health", "tcp://127.0.0.1:0", per_generation = true } },
  command = { "node", "$PWD/tests/apps/node_http.js" }, env = { LINGER = "1" }, drain_timeout = 300,
  policy = { "graceful", ready = { notify = false, http = "http://127.0.0.1:{port:health}/" } } }
LUA
"$B/baton" run "$W/svc.lua" 2> "$W/sup.log" & BPID=$!
answers() { "$B/baton" status -s "$W/ctl.sock" 2>/dev/null | grep -q ' active '; }
wait_until 20 answers
PORT=$("$B/baton" status -s "$W/ctl.sock" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["listeners"][0]["address"].rsplit(":",1)[1])')
us_of() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%d\n", ($12 + $13) * 1000000 / hz }' "/proc/$1/stat"; }
pct() { # the supervisor's CPU over S seconds, in % of a core
    local c0 t0
    c0=$(us_of "$BPID"); t0=$(now_us)
    sleep "$S"
    echo "scale=2; ($(us_of "$BPID") - $c0) * 100 / ($(now_us) - $t0)" | bc
}
draining() { "$B/baton" status -s "$W/ctl.sock" --json | grep -q '"state": "draining"'; }
printf '%-12s %14s %14s\n' connections "no drain %" "draining %"
for c in "$@"; do
    rm -f "$W/held" "$W/close"
    python3 - "$PORT" "$c" "$W/held" "$W/close" <<'PY' &
import os, socket, sys, time
port, n, held, close = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(4096)
    conns.append(s)
open(held, "w").close()
for _ in range(6000):
    if os.path.exists(close):
        break
    time.sleep(0.05)
for s in conns:
    s.close()
PY
    HPID=$!
    wait_until 60 test -e "$W/held"
    base=$(pct)
    "$B/baton" restart -s "$W/ctl.sock" > /dev/null
    sleep 0.5
    if [ "$c" -gt 0 ]; then draining || { echo "drain_cost: no generation drains" >&2; exit 1; }; fi
    drain=$(pct)
    touch "$W/close"
    wait "$HPID"; HPID=""
    gone_drains() { ! draining; }
    wait_until 30 gone_drains || { tail -5 "$W/sup.log" >&2; exit 1; }
    printf '%-12s %14s %14s\n' "$c" "$base" "$drain"
done
