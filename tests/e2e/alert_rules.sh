#!/usr/bin/env bash
# Every counter of the supervisor's own is on the Prometheus page at 0 from
# its start, so the shipped alerts see the first event: a real supervisor's
# scrapes, before and after its first policy error, make the series that
# `promtool test rules` runs examples/monitoring/alerts.yml against
# (BatonPolicyErrors must fire; with the series starting at the first
# error, increase() ignored it). examples/monitoring/alerts_test.yml, the
# rules' own unit tests, pass too.
. "$(dirname "$0")/lib.sh"
command -v promtool > /dev/null || {
    echo "skip: promtool is not installed (scripts/deps.sh test installs prometheus)"
    exit 77
}
: "${SOURCE_DIR:?}"

cat > "$T/policy.lua" <<'LUA'
return require("baton.policies.default")
LUA
cat > "$T/service.lua" <<LUA
return {
  name = "alerts-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  metrics = "tcp://127.0.0.1:0",
  command = { "$HELLO" },
  policy = "policy.lua",
}
LUA
start_baton
metrics=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' | sed -n 's/.*"metrics":"tcp:\/\/\([0-9.:]*\)".*/\1/p')
[ -n "$metrics" ] || fail "no metrics address in status"
curl -sf "http://$metrics/metrics" > "$T/m0.txt" || fail "GET /metrics failed"

# value FILE NAME: the sample of NAME{service="alerts-e2e"} in FILE, or _.
value() {
    local v
    v=$(sed -n "s/^$2{service=\"alerts-e2e\"} \\([0-9.e+]*\\)$/\\1/p" "$1")
    echo "${v:-_}"
}
for c in restarts rollbacks crashes reloads policy_errors state_migrations state_refused; do
    [ "$(value "$T/m0.txt" "baton_${c}_total")" = 0 ] ||
        fail "baton_${c}_total is not on the page at 0 from the start: $(grep "baton_${c}" "$T/m0.txt" || echo none)"
done
echo "ok: every counter of the supervisor's own is at 0 from its start"

# The first policy error: a restart whose policy raises.
cat > "$T/policy.lua" <<'LUA'
local default = require("baton.policies.default")
return { start = default.start, restart = function() error("the first error") end }
LUA
"$BATON" reload -s "$SOCK" > /dev/null || fail "reload refused"
rc=0
"$BATON" restart -s "$SOCK" > /dev/null 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "the failing restart exited $rc"
curl -sf "http://$metrics/metrics" > "$T/m1.txt" || fail "GET /metrics failed"
v0=$(value "$T/m0.txt" baton_policy_errors_total)
v1=$(value "$T/m1.txt" baton_policy_errors_total)
[ "$v1" = 1 ] || fail "baton_policy_errors_total is $v1 after one error"

# Scrapes a minute apart: the start, then the error from the second on.
cat > "$T/live_test.yml" <<YML
rule_files:
  - $SOURCE_DIR/examples/monitoring/alerts.yml
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'baton_policy_errors_total{service="alerts-e2e"}'
        values: '$v0 ${v1}x20'
    alert_rule_test:
      - eval_time: 5m
        alertname: BatonPolicyErrors
        exp_alerts:
          - exp_labels: { severity: ticket, service: alerts-e2e }
            exp_annotations:
              summary: "alerts-e2e: the restart policy raised errors or hit its limits"
              description: "Each one rolled back or was contained; the supervisor's log has the traceback."
YML
promtool test rules "$T/live_test.yml" > "$T/promtool.out" 2>&1 ||
    fail "BatonPolicyErrors does not fire on the first error (series '$v0 ${v1}x20'): $(cat "$T/promtool.out")"
echo "ok: BatonPolicyErrors fires on the supervisor's first error (series '$v0 ${v1}x20')"

(cd "$SOURCE_DIR/examples/monitoring" && promtool test rules alerts_test.yml) > "$T/promtool.out" 2>&1 ||
    fail "examples/monitoring/alerts_test.yml: $(cat "$T/promtool.out")"
echo "ok: promtool test rules examples/monitoring/alerts_test.yml"
stop_baton
