#!/usr/bin/env bash
# How soon a graceful drain ends after the old generation's last
# connection closes: the kernel's count (graceful, polled every 10 ms)
# against the same policy polling every 0.5 s (graceful's interval when it
# read only the app's own gauge), in the same run.
# The app is a plain Node http server (tests/apps/node_http.js) that keeps
# idle keep-alive connections open while it drains, so only the client's
# close ends them, and (LINGER) keeps running after the last one: only
# baton's count can end its drain early. Per round: a client opens C keep-alive connections (one
# request each) to the serving generation, `baton restart` makes it the
# draining one, the client closes them all at T0; the drain's end comes
# from `baton events --json` (its start + its duration: the process reaped)
# and when baton decided from its log line. Figures: median and worst of
# (end - T0) over R rounds (the 0.5 s baseline: at most 10), the median
# and p99 decision, the ratio of the medians.
#   bench/drain_end.sh [ROUNDS] [CONNECTIONS]     (default 50, 50)
set -euo pipefail
cd "$(dirname "$0")/.."
R=${1:-50}
C=${2:-50}
. bench/lib.sh
bench_build
command -v node > /dev/null || { echo "drain_end: node is not installed (scripts/deps.sh test)"; exit 1; }
W=$(mktemp -d /tmp/baton-drain-end.XXXXXX)
BPID=""
cleanup() { kill_tree "$BPID"; rm -rf "$W"; }
trap cleanup EXIT

service() { # POLL
    cat > "$W/svc.lua" <<LUA
return { name = "drain-end", control = "$W/ctl.sock",
  listen = { { "http", "tcp://127.0.0.1:0" }, { "health", "tcp://127.0.0.1:0", per_generation = true } },
  command = { "node", "$PWD/tests/apps/node_http.js" }, env = { LINGER = "1" }, drain_timeout = 30,
  policy = { "graceful", poll = $1, ready = { notify = false, http = "http://127.0.0.1:{port:health}/" } } }
LUA
}
service 0.01
"$B/baton" run "$W/svc.lua" 2> "$W/sup.log" & BPID=$!
answers() { "$B/baton" status -s "$W/ctl.sock" > /dev/null 2>&1; }
wait_until 10 answers
PORT=$("$B/baton" status -s "$W/ctl.sock" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["listeners"][0]["address"].rsplit(":",1)[1])')

# One round: prints end - T0 in ms for the generation that drains.
round() {
    python3 - "$PORT" "$C" "$B/baton" "$W/ctl.sock" "$W/sup.log" <<'PY'
import datetime, json, re, socket, subprocess, sys, time
port, n, baton, sock, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def events():
    return json.loads(subprocess.run([baton, "events", "-s", sock, "--json"], check=True,
                                     capture_output=True).stdout)
conns = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(4096)
    conns.append(s)
status = json.loads(subprocess.run([baton, "status", "-s", sock, "--json"], check=True,
                                   capture_output=True).stdout)
old = [g["id"] for g in status["generations"] if g["state"] == "active"][0]
subprocess.run([baton, "restart", "-s", sock], check=True, capture_output=True)
time.sleep(0.5)  # it drains, holding our idle connections
t0 = time.time()
for s in conns:
    s.close()
deadline = time.time() + 20
while time.time() < deadline:
    d = [e for e in events() if e["kind"] == "drain" and e["generation"] == old]
    if d:
        e = d[-1]
        assert e["reason"].startswith("ended early: idle"), e
        # When baton decided: its log line (UTC, to the millisecond).
        m = re.search(r"^(\S+)Z baton\[\d+\] info: generation %d is idle" % old, open(log).read(), re.M)
        decided = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc).timestamp()
        print(f"{(e['time'] + e['duration'] - t0) * 1000:.1f} {(decided - t0) * 1000:.1f}")
        sys.exit(0)
    time.sleep(0.05)
sys.exit("no drain end")
PY
}

measure() { # LABEL
    local i
    : > "$W/$1"
    for i in $(seq 1 "$R"); do round >> "$W/$1"; done
}
measure kernel
service 0.5
"$B/baton" reload -s "$W/ctl.sock" > /dev/null
R_KERNEL=$R
R=$(( R < 10 ? R : 10 )) # the slow baseline: 10 rounds say enough
measure slow
python3 - "$W/kernel" "$W/slow" "$R_KERNEL" "$R" "$C" <<'PY'
import statistics, sys
k = [tuple(map(float, x.split())) for x in open(sys.argv[1])]
s = [tuple(map(float, x.split())) for x in open(sys.argv[2])]
def p99(v):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(0.99 * (len(v) - 1))))]
mk, ms = statistics.median(x[0] for x in k), statistics.median(x[0] for x in s)
dk = statistics.median(x[1] for x in k)
print(f"drain_end: connections={sys.argv[5]} | poll_10ms rounds={sys.argv[3]} "
      f"ended median_ms={mk:.1f} p99_ms={p99(x[0] for x in k):.1f} "
      f"decided median_ms={dk:.1f} p99_ms={p99(x[1] for x in k):.1f} | "
      f"poll_500ms rounds={sys.argv[4]} ended median_ms={ms:.1f} p99_ms={p99(x[0] for x in s):.1f} "
      f"| ratio={ms / max(mk, 0.1):.1f}")
PY
