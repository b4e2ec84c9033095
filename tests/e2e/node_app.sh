#!/usr/bin/env bash
# A Node.js http server that sends no READY=1 (tests/apps/node_http.js, set
# up as docs/recipes.md says) under the graceful policy:
# - readiness comes from a probe of its health listener, one each
#   generation has for itself (per_generation = true; {port:health} in the
#   probe), with ready = { notify = false, http = ... }: every restart
#   takes over, and `baton status` marks the listener per_generation;
# - `baton status --json` gives each live generation's `connections`, read
#   from the kernel (the app exports nothing): the serving one holds the
#   load client's keep-alive connections;
# - each old generation's drain ends because it holds no connection: the
#   kernel shows none (baton then stops it) or the app exits by itself once
#   its last one closed; none runs to its deadline (bench/ measures how
#   soon after the last connection closes);
# - /metrics has the per-generation connections and the listener's queue;
# - 15 restarts under keep-alive and new-connection load: no failed request.
. "$(dirname "$0")/lib.sh"
command -v node > /dev/null || fail "node is not installed (scripts/deps.sh test)"
RESTARTS=${RESTARTS:-15}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
METRICS=$(free_port)

cat > "$T/service.lua" <<LUA
return {
  name = "node-e2e",
  control = "$SOCK",
  listen = { { "http", "tcp://127.0.0.1:0" },
             { "health", "tcp://127.0.0.1:0", per_generation = true } },
  metrics = $METRICS,
  command = { "node", "$SOURCE_DIR/tests/apps/node_http.js" },
  drain_timeout = 20,
  policy = { "graceful", ready = { notify = false, timeout = 10,
                                   http = "http://127.0.0.1:{port:health}/" } },
}
LUA
start_baton
start_load
sleep 0.5
conns=$("$BATON" status -s "$SOCK" --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
g = [g for g in s["generations"] if g["state"] == "active"][0]
assert isinstance(g["connections"], int), g
assert s["listeners"][1]["name"] == "health" and s["listeners"][1]["per_generation"] is True, s
print(g["connections"], g.get("rss_bytes", 0), s["listeners"][0].get("max_queue", -1))')
read -r n rss maxq <<< "$conns"
[ "$n" -ge 8 ] || fail "status ($conns) shows $n connections on the serving generation (the load holds 8 keep-alive ones)"
[ "$rss" -gt 1000000 ] || fail "status shows rss_bytes=$rss for a Node process"
[ "$maxq" -gt 0 ] || fail "status shows no accept queue maximum ($maxq)"
k=$("$BATON" stats -s "$SOCK" --json | python3 -c '
import json, sys
k = json.load(sys.stdin)["kernel"]
g = k["generations"][0]
assert g["connections_closing"] >= 0 and g["listening"] == 1 and g["processes"] == 1, g
print(g["connections"], k["listeners"][0]["name"], len(k["listeners"]))')
read -r kn kl knl <<< "$k"
[ "$kn" -ge 8 ] && [ "$kl" = http ] && [ "$knl" = 1 ] || fail "baton stats --json kernel figures: $k"
curl -sf "http://127.0.0.1:$METRICS/metrics" > "$T/metrics.txt" || fail "no /metrics"
grep -Eq '^baton_generation_connections\{service="node-e2e",generation="1"\} [1-9]' "$T/metrics.txt" ||
    fail "no per-generation connections on /metrics: $(grep baton_generation "$T/metrics.txt")"
grep -q '^baton_listener_queue_max{service="node-e2e",listener="http"} ' "$T/metrics.txt" ||
    fail "no listener queue on /metrics"

restarts "$RESTARTS"
stop_load
assert_no_load_errors 1000
# Every old generation's drain ended because it held no connection: the
# kernel showed none (then baton stopped it), or the app exited by itself
# once its last one closed. None ran to its deadline.
drains_clean "$RESTARTS"
assert_hooks_in_budget
stop_baton
echo "ok: node without READY=1, $RESTARTS restarts; $NDRAINS drains, $NIDLE ended by baton seeing no connection, the rest by the app's exit; slowest ${SLOWEST_MS} ms; $LOAD"
