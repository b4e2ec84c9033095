#!/usr/bin/env bash
# examples/kubernetes, checked without a cluster:
# - every manifest passes a strict client-side validation against the
#   Kubernetes API's own schema (scripts/k8s_validate.py, Debian's
#   python3-kubernetes models), and a manifest with a misspelt field fails
#   it;
# - the manifests agree with the service file they ship: the probes reach
#   baton's metrics port, on /ready and /live; the grace period is above the
#   drain timeout;
# - the ConfigMap's service file runs under a real supervisor from a folder
#   laid out the way the kubelet lays out a ConfigMap volume (a timestamped
#   folder, a "..data" symlink to it, a symlink per key), under load; an
#   update the kubelet's way (a new folder, "..data" swapped by a rename)
#   of app.conf restarts the app in place, and one of service.lua reloads
#   it; no request fails; /ready and /live answer 200.
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3 # Debian's, with python3-kubernetes and python3-yaml
K="$SOURCE_DIR/examples/kubernetes"
VALIDATE="$SOURCE_DIR/scripts/k8s_validate.py"
"$PY" -c "import kubernetes, yaml" 2>/dev/null || {
    echo "skip: Debian's python3-kubernetes is not installed (scripts/deps.sh test installs it)"
    exit 77
}

# 1. Validation, and that it can fail.
"$PY" "$VALIDATE" "$K"/*.yaml || fail "examples/kubernetes does not validate"
sed 's/periodSeconds: 2/periodSecond: 2/' "$K/deployment.yaml" > "$T/bad.yaml"
rc=0
"$PY" "$VALIDATE" "$T/bad.yaml" 2> "$T/bad.err" > /dev/null || rc=$?
[ $rc -eq 1 ] && grep -q "periodSecond: unknown field of V1Probe" "$T/bad.err" ||
    fail "a misspelt field was not refused (exit $rc): $(cat "$T/bad.err")"

# 2. The manifests and the ConfigMap's own files, unpacked the kubelet's way.
# kubelet_update DIR: writes DIR/..new/KEY for every key of the ConfigMap in
# $T/cm.yaml, then swaps "..data" to it with one rename, as AtomicWriter does.
kubelet_update() {
    local stamp="..$(date +%Y_%m_%d_%H_%M_%S).$RANDOM"
    "$PY" - "$T/cm.yaml" "$T/etc/$stamp" <<'PY'
import os, sys, yaml
cm = yaml.safe_load(open(sys.argv[1]))
os.mkdir(sys.argv[2])
for key, text in cm["data"].items():
    with open(os.path.join(sys.argv[2], key), "w") as f:
        f.write(text)
PY
    ln -s "$stamp" "$T/etc/..data_tmp"
    mv -T "$T/etc/..data_tmp" "$T/etc/..data"
    for key in service.lua app.conf; do
        [ -L "$T/etc/$key" ] || ln -s "..data/$key" "$T/etc/$key"
    done
}
cp "$K/configmap.yaml" "$T/cm.yaml"
mkdir "$T/etc"
kubelet_update
"$PY" - "$K/deployment.yaml" "$T/etc/service.lua" <<'PY' || fail "the manifests and the service file disagree"
import re, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
pod = d["spec"]["template"]["spec"]
c = pod["containers"][0]
ports = {p["name"]: p["containerPort"] for p in c["ports"]}
svc = open(sys.argv[2]).read()
metrics = int(re.search(r'METRICS_PORT"\) or "(\d+)"', svc).group(1))
http = int(re.search(r'HELLO_PORT"\) or "(\d+)"', svc).group(1))
assert ports["metrics"] == metrics and ports["http"] == http, (ports, metrics, http)
for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/live")):
    get = c[probe]["httpGet"]
    assert get["path"] == path and get["port"] == "metrics", (probe, get)
drain = float(re.search(r"drain_timeout = (\d+)", svc).group(1))
assert pod["terminationGracePeriodSeconds"] > drain, (pod["terminationGracePeriodSeconds"], drain)
mount = {m["name"]: m for m in c["volumeMounts"]}["config"]
assert mount["mountPath"] == "/etc/baton" and "subPath" not in mount, mount
PY

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export BATON_BIND=127.0.0.1 BATON_CONTROL="$SOCK" HELLO_SERVER="$HELLO"
export HELLO_PORT METRICS_PORT
HELLO_PORT=$(free_port)
METRICS_PORT=$(free_port)
"$BATON" check "$T/etc/service.lua" > /dev/null || fail "the ConfigMap's service file does not pass baton check"
start_baton "$T/etc/service.lua"
[ "$PORT" = "$HELLO_PORT" ] || fail "listening on $PORT, not $HELLO_PORT"
[ "$(curl -sf "http://127.0.0.1:$METRICS_PORT/ready")" = ready ] || fail "/ready is not 200"
[ "$(curl -sf "http://127.0.0.1:$METRICS_PORT/live")" = alive ] || fail "/live is not 200"
start_load

# 3. app.conf changes: the app restarts in the pod.
sed -i 's/greeting = hello/greeting = hello again/' "$T/cm.yaml"
kubelet_update
wait_for 10 active_is 2 || fail "a ConfigMap update of app.conf did not restart the app"
"$BATON" events --json > "$T/events.json"
grep -q '"reason": "generation 2 took over from generation 1 (asked for: [^"]*app.conf changed)"' "$T/events.json" ||
    fail "no restart in the history: $(cat "$T/events.json")"
grep -q "restart requested (.*/app.conf changed)" "$T/sup.log" || fail "the restart was not for app.conf"

# 4. service.lua changes: baton reloads it.
sed -i 's/drain_timeout = 30/drain_timeout = 20/' "$T/cm.yaml"
kubelet_update
reloaded() { "$BATON" events --json | grep -q '"kind": "reload"'; }
wait_for 10 reloaded || fail "a ConfigMap update of service.lua was not reloaded"
"$BATON" events --json | "$PY" -c '
import json, sys
r = [e for e in json.load(sys.stdin) if e["kind"] == "reload"]
sys.exit(0 if len(r) == 1 and r[0]["ok"] else 1)' ||
    fail "not one reload that was applied: $("$BATON" events --json)"
[ "$(curl -sf "http://127.0.0.1:$METRICS_PORT/live")" = alive ] || fail "/live is not 200 after the reload"

stop_load
assert_no_load_errors 100
stop_baton
echo "ok: manifests valid and consistent; ConfigMap updates: a restart, a reload; $LOAD"
