#!/usr/bin/env bash
# Boundary crossings (C <-> Lua) of one default-policy restart and of one
# second of a `graceful` drain, for a baton binary: the supervisor counts
# each event it hands the runtime, each view it asks for and each call the
# runtime makes into baton.core, in the metric baton.boundary_crossings.
#   bench/crossings.sh BATON HELLO [BATON_B HELLO_B]
# prints "restart=N drain_per_s=M" for each binary given (A, then B), so a
# change is measured against its baseline in the same run.
set -euo pipefail
measure() { # measure BATON HELLO
    local baton=$1 hello=$2 T sock bpid port held
    T=$(mktemp -d /tmp/baton-crossings.XXXXXX)
    sock=$T/control.sock
    cat > "$T/service.lua" <<LUA
return { name = "crossings", control = "$sock", listen = { http = "tcp://127.0.0.1:0" },
  command = { "$hello" }, ready_timeout = 10, drain_timeout = 30, policy = "POLICY" }
LUA
    crossings() {
        "$baton" stats -s "$sock" --json | python3 -c '
import json, sys
m = [m for m in json.load(sys.stdin)["metrics"] if m["name"] == "baton.boundary_crossings"]
print(int(m[0]["value"]))'
    }
    # Live generations, read through `baton stats` (which crosses nothing).
    gens() {
        "$baton" stats -s "$sock" --json | python3 -c '
import json, sys
m = [m for m in json.load(sys.stdin)["metrics"] if m["name"] == "baton.generations"]
print(int(m[0]["value"]))'
    }
    run_with() { # run_with POLICY
        sed -i "s/policy = \"[a-z]*\"/policy = \"$1\"/; s/POLICY/$1/" "$T/service.lua"
        "$baton" run "$T/service.lua" > "$T/sup.log" 2>&1 &
        bpid=$!
        for _ in $(seq 100); do "$baton" status -s "$sock" > /dev/null 2>&1 && break; sleep 0.1; done
        sleep 0.5
    }
    stop() { "$baton" stop -s "$sock" > /dev/null 2>&1 || kill "$bpid"; wait "$bpid" 2>/dev/null || true; }
    # One default restart, after the old one drained (median of 5).
    run_with default
    local r=()
    for _ in 1 2 3 4 5; do
        local b a
        b=$(crossings)
        "$baton" restart -s "$sock" > /dev/null
        for _ in $(seq 100); do [ "$(gens)" -le 1 ] 2>/dev/null && break; sleep 0.1; done
        a=$(crossings)
        r+=($((a - b)))
    done
    stop
    # A graceful drain held open by one idle keep-alive connection: the
    # crossings over 3 s of it, per second.
    run_with graceful
    port=$("$baton" status -s "$sock" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["listeners"][0]["address"].rsplit(":",1)[1])')
    python3 -c "import socket,time; s=socket.create_connection(('127.0.0.1',$port)); time.sleep(8)" &
    held=$!
    sleep 0.3
    "$baton" restart -s "$sock" > /dev/null
    sleep 0.5
    local b a
    b=$(crossings)
    sleep 3
    a=$(crossings)
    kill "$held" 2>/dev/null || true
    wait "$held" 2>/dev/null || true
    stop
    rm -rf "$T"
    local med
    med=$(printf '%s\n' "${r[@]}" | sort -n | sed -n 3p)
    echo "restart=$med drain_per_s=$(((a - b) / 3)) (restarts: ${r[*]})"
}
a=$(measure "$1" "$2")
echo "A $1: $a"
[ $# -ge 4 ] || exit 0
b=$(measure "$3" "$4")
echo "B $3: $b"
# B over A, each figure: the ratio against the baseline of the same run.
field() { echo "$1" | sed -n "s/.*$2=\([0-9]*\).*/\1/p"; }
for f in restart drain_per_s; do
    awk -v a="$(field "$a" $f)" -v b="$(field "$b" $f)" -v f=$f \
        'BEGIN { printf "%s B/A = %s\n", f, (a > 0 ? sprintf("%.2f", b / a) : "n/a") }'
done
