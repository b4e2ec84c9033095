#!/usr/bin/env bash
# Counters survive restarts exactly: after 20 restarts under load, the
# example server's http.requests equals the number of responses the load
# client received (nothing lost, nothing counted twice), and the
# per-generation figures add up to it. The Prometheus page passes promtool.
. "$(dirname "$0")/lib.sh"
RESTARTS=${RESTARTS:-20}

cat > "$T/service.lua" <<LUA
return {
  name = "stats-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  metrics = "tcp://127.0.0.1:0",
  command = { "$HELLO" },
}
LUA
start_baton
metrics=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | sed -n 's/.*"metrics":"tcp:\/\/\([0-9.:]*\)".*/\1/p')
[ -n "$metrics" ] || fail "no metrics address in status"
curl -sf "http://$metrics/ready" | grep -q ready || fail "/ready is not 200"
[ "$(curl -sf "http://$metrics/live")" = alive ] || fail "/live is not 200 alive"

start_load
for i in $(seq 1 "$RESTARTS"); do
    "$BATON" restart -s "$SOCK" > /dev/null || fail "restart $i"
    sleep 0.1
done
stop_load
assert_no_load_errors 1000
sleep 0.3 # the last responses' write callbacks

"$BATON" stats -s "$SOCK" --json > "$T/stats.json"
python3 - "$T/stats.json" "$(load_field ok)" "$RESTARTS" <<'PY'
import json, sys
stats = {m["name"]: m for m in json.load(open(sys.argv[1]))["metrics"]}
received, restarts = int(sys.argv[2]), int(sys.argv[3])
req = stats["http.requests"]
assert req["type"] == "counter"
assert int(req["value"]) == received, f"http.requests={req['value']} but the client received {received}"
parts = req["retired"] + req["supervisor"] + sum(req["generations"].values())
assert int(parts) == received, f"per-generation figures add up to {parts}, not {received}"
assert len(req["generations"]) == 7, req["generations"]  # 21 generations, 7 lanes
assert str(restarts + 1) in req["generations"], req["generations"]
assert stats["http.errors"]["value"] == 0
assert stats["baton.restarts"]["value"] == restarts, stats["baton.restarts"]
assert stats["baton.generations"]["value"] == 1
assert stats["baton.drain_seconds"]["count"] == restarts
print(f"http.requests={int(req['value'])} = responses received; retired={int(req['retired'])}")
PY

curl -sf "http://$metrics/metrics" > "$T/metrics.txt" || fail "GET /metrics failed"
grep -q "^http_requests_total{service=\"stats-e2e\"} $(load_field ok)$" "$T/metrics.txt" ||
    fail "Prometheus total differs: $(grep '^http_requests_total' "$T/metrics.txt")"
# Prometheus's conventions: a HELP that says what it means, a service label,
# the build, the serving generation, the last restart; per-generation series
# only for the generations that live (one here, after the drains).
active=$(active_generation)
grep -q '^baton_build_info{service="stats-e2e",version="[0-9.]*"} 1$' "$T/metrics.txt" || fail "no baton_build_info"
grep -q "^baton_active_generation{service=\"stats-e2e\"} $active$" "$T/metrics.txt" || fail "no active generation $active"
grep -q '^baton_last_restart_success{service="stats-e2e"} 1$' "$T/metrics.txt" || fail "no last restart outcome"
grep -q '^# HELP baton_restarts_total Restarts that took over' "$T/metrics.txt" || fail "no HELP text for baton_restarts_total"
byg=$(grep -c '^http_requests_by_generation_total{' "$T/metrics.txt")
[ "$byg" = 1 ] || fail "per-generation series for $byg generations, want the 1 live one: $(grep '^http_requests_by_generation_total' "$T/metrics.txt")"
grep -q "^http_requests_by_generation_total{service=\"stats-e2e\",generation=\"$active\"}" "$T/metrics.txt" ||
    fail "the live generation's series is missing"
if command -v promtool > /dev/null; then
    promtool check metrics < "$T/metrics.txt" || fail "promtool refused the page"
    echo "ok: promtool check metrics"
    promtool check rules "$SOURCE_DIR/examples/monitoring/alerts.yml" > /dev/null ||
        fail "promtool refused examples/monitoring/alerts.yml"
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["panels"]' \
        "$SOURCE_DIR/examples/monitoring/grafana-dashboard.json" || fail "the dashboard is not JSON"
    echo "ok: examples/monitoring: alert rules pass promtool, the dashboard parses"
else
    fail "promtool is not installed (scripts/deps.sh test installs prometheus)"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$metrics/nope")
[ "$code" = 404 ] || fail "unknown path gave $code"
stop_baton
echo "ok: stats after $RESTARTS restarts, $LOAD"
