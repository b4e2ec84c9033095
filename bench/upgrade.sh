#!/usr/bin/env bash
# How long `baton upgrade` takes (check the new image, carry the state
# across the exec, the new image takes over and answers) against `baton
# restart` (a new generation of the example server takes over), in the same
# run, on the same supervisor: N of each, alternating, first with no load,
# then under keep-alive and new-connection load (8 + 8 clients).
# Figures, median and p90: the client's view (the command started to the
# command exited: for upgrade, the new image answered; for restart, the new
# generation took over) and the supervisor's own ("duration" in --json), and
# the ratio upgrade / restart of each. Under load, the failed requests too.
#   bench/upgrade.sh [N]     (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-20}
. bench/lib.sh
bench_build
# Absolute paths: the service file runs the app, and BUILD may be either.
BATON=$(realpath "$B/baton") HELLO=$(realpath "$B/examples/hello_server")
LOADGEN=$(realpath "$B/bench/loadgen")
W=$(mktemp -d /tmp/baton-upgrade-bench.XXXXXX)
BPID="" LPID=""
cleanup() { kill_tree "$BPID" "$LPID"; rm -rf "$W"; }
trap cleanup EXIT

cat > "$W/svc.lua" <<LUA
return { name = "upgrade-bench", control = "$W/ctl.sock", listen = { http = "tcp://127.0.0.1:0" },
         command = { "$HELLO" } }
LUA
"$BATON" run "$W/svc.lua" 2> "$W/sup.log" & BPID=$!
active() { [ -n "$(baton_active_pid "$W/ctl.sock" 2> /dev/null)" ]; }
wait_until 10 active
PORT=$("$BATON" status -s "$W/ctl.sock" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["listeners"][0]["address"].rsplit(":",1)[1])')
draining() { "$BATON" status -s "$W/ctl.sock" --json | tr -d ' \n' | grep -q '"state":"draining"'; }
settled() { ! draining; }

# timed CMD FILE: runs `baton CMD --json`, which must exit 0; appends
# "CLIENT_US DURATION_US" to FILE.
timed() {
    local a b out
    a=$(date +%s%N)
    out=$("$BATON" "$1" -s "$W/ctl.sock" --json) || { echo "baton $1 failed: $out" >&2; return 1; }
    b=$(date +%s%N)
    echo "$(( (b - a) / 1000 )) $(echo "$out" | tr -d ' \n' | sed -n 's/.*"duration":\([0-9.e-]*\).*/\1/p' |
        awk '{printf "%d", $1 * 1e6}')" >> "$2"
}

# rounds TAG: N upgrades and N restarts, alternating; after each restart,
# the old generation's drain ends before the next upgrade (neither carries
# a drain).
rounds() {
    : > "$W/upgrade.$1"
    : > "$W/restart.$1"
    for _ in $(seq 1 "$N"); do
        timed upgrade "$W/upgrade.$1"
        timed restart "$W/restart.$1"
        wait_until 10 settled
    done
}

# figures FILE COLUMN: "MEDIAN P90" in ms (p90: nearest rank).
figures() {
    cut -d' ' -f"$2" "$1" | sort -n |
        awk '{a[NR]=$1} END {p=int(NR*0.9+0.999); printf "%.1f %.1f", (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)/1000, a[p]/1000}'
}

report() { # TAG TITLE
    local uc ud rc rd
    read -r -a uc <<< "$(figures "$W/upgrade.$1" 1)"
    read -r -a ud <<< "$(figures "$W/upgrade.$1" 2)"
    read -r -a rc <<< "$(figures "$W/restart.$1" 1)"
    read -r -a rd <<< "$(figures "$W/restart.$1" 2)"
    echo "$2: $N upgrades and $N restarts, alternating, median / p90"
    printf '  %-62s %7s / %7s ms\n' \
        "baton upgrade, client's view (command to new image answered)" "${uc[0]}" "${uc[1]}" \
        "baton upgrade, supervisor's \"duration\"" "${ud[0]}" "${ud[1]}" \
        "baseline, same run: baton restart, client's view (to took over)" "${rc[0]}" "${rc[1]}" \
        "baseline, same run: baton restart, supervisor's \"duration\"" "${rd[0]}" "${rd[1]}"
    echo "  ratio upgrade / restart (medians): client's view" \
        "$(awk -v a="${uc[0]}" -v b="${rc[0]}" 'BEGIN {printf "%.2f", a / b}')," \
        "supervisor's $(awk -v a="${ud[0]}" -v b="${rd[0]}" 'BEGIN {printf "%.2f", a / b}')"
}

pid0=$BPID
rounds idle
"$LOADGEN" --port "$PORT" --keepalive 8 --close 8 --duration 600 > "$W/load.log" & LPID=$!
sleep 1
rounds load
kill -INT "$LPID"
wait "$LPID"
LPID=""
LOAD=$(grep '^loadgen:' "$W/load.log")
failed=0
for f in non2xx connect_errors resets eof timeouts; do failed=$((failed + $(load_field "$LOAD" "$f"))); done
image=$("$BATON" status -s "$W/ctl.sock" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["pid"], d["image"]["upgrades"], d["image"]["version"])')
read -r pid upgrades version <<< "$image"
if [ "$pid" != "$pid0" ] || [ "$upgrades" != $((2 * N)) ]; then
    echo "upgrade bench: pid $pid (was $pid0), $upgrades upgrades (want $((2 * N)))" >&2
    exit 1
fi

echo "baton upgrade against baton restart (baton $version, pid $pid throughout, $upgrades upgrades)"
report idle "no load"
report load "under load (8 keep-alive + 8 new-connection clients)"
echo "  failed requests during the load run: $failed"
echo "  $LOAD"
