#!/usr/bin/env bash
# baton at scale, each against a baseline measured in the same run:
#
#   listeners   1,000 and 10,000 listening sockets handed to every
#               generation: start-up, `baton restart` (and the supervisor's
#               CPU for it), takeover after a SIGKILL, against the same with
#               1 listener; the ports answer after the restarts
#               (LISTENER_COUNTS="1 1000 10000" by default)
#   connections 10,000 open keep-alive connections across 3 restarts: failed
#               requests (goal 0), against the same load with no restart
#   restarts    1,000 restarts in a row: the supervisor's open fds and
#               resident memory sampled every 100 (goal: flat)
#   paired      a restart with N listeners against one with 1, both services
#               running side by side and restarted in turn, ROUNDS rounds
#               (PAIR_N=1000, ROUNDS=41): the median of the per-round ratios,
#               so a noisy moment costs both sides alike (not in the default);
#               PAIR_APP=hello runs examples/hello, which serves the first
#               listener only: what is left of the difference is baton's
#
#   bench/scale.sh [listeners|connections|restarts|paired ...]   (default: the first three)
#   Results go to stdout and bench/results/scale.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- listeners connections restarts
for what in "$@"; do
    case "$what" in
        listeners | connections | restarts | paired) ;;
        *) echo "scale: unknown run '$what' (known: listeners, connections, restarts, paired)" >&2; exit 2 ;;
    esac
done
. bench/lib.sh
bench_build bench
OUT=bench/results
mkdir -p "$OUT"
W=$(mktemp -d /tmp/baton-scale.XXXXXX)
export XDG_RUNTIME_DIR="$W/run" # the carry file and the keeper's socket: this run's own
mkdir -m 700 "$XDG_RUNTIME_DIR"
SUP="" LPID="" SUP1=""
cleanup() {
    kill_tree "$LPID" "$SUP" "$SUP1" # the load; the supervisors and their generations
    rm -rf "$W"
}
trap cleanup EXIT
REPORT=$OUT/scale.md
: > "$REPORT"
say() { echo "$*" | tee -a "$REPORT"; }

# run_baton FILE: starts the supervisor, waits until a generation serves.
run_baton() {
    "$BATON" run "$1" 2> "$W/sup.log" & SUP=$!
    wait_until 60 has_active || { tail -5 "$W/sup.log" >&2; exit 1; }
}
has_active() {
    kill -0 "$SUP" 2>/dev/null || { echo "the supervisor exited" >&2; exit 1; }
    "$BATON" status -s "$W/ctl.sock" 2>/dev/null | grep -q ' active '
}
# (After a takeover that failed, the new supervisor may be gone already.)
stop_baton() { "$BATON" stop -s "$W/ctl.sock" > /dev/null 2>&1 || kill_tree "$SUP"; wait "$SUP" 2> /dev/null || true; SUP=""; }
restart_us() {
    local a
    a=$(now_us)
    "$BATON" restart -s "$W/ctl.sock" > /dev/null
    echo $(( $(now_us) - a ))
}
restart_ms() {
    local a
    a=$(now_us)
    "$BATON" restart -s "$W/ctl.sock" > /dev/null
    echo $(( ($(now_us) - a) / 1000 ))
}

# --- 1,000 and 10,000 listeners -------------------------------------------------
listeners_service() { # N [NAME]: a service with N listeners on free ports in W/NAME.lua,
    local name=${2:-svc} sock=ctl # its control socket W/NAME.sock (svc: W/ctl.sock)
    [ "$name" = svc ] || sock=$name
    {
        echo "return { name = 'scale-$name', control = '$W/$sock.sock', command = { '${APP:-$PWD/$B/bench/listeners_app}' },"
        echo "  fdstore_max = 0, listen = {"
        for i in $(seq 1 "$1"); do echo "    l$i = 'tcp://127.0.0.1:0',"; done
        echo "} }"
    } > "$W/$name.lua"
}
median_of() { # median_of N CMD...: the median of N runs of CMD's output
    local n=$1
    shift
    for _ in $(seq 1 "$n"); do "$@"; done | median
}
sup_us() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%d\n", ($12 + $13) * 1000000 / hz }' "/proc/$SUP/stat"; }
# takeover: SIGKILLs the supervisor, starts another, and times it until
# the generation that served is active again, adopted, into TAKE (ms); "-"
# when it is not within 60 s (the keeper holds at most 512 fds until it
# holds any number). Not in a subshell: SUP is the new supervisor after.
takeover() {
    local a gen kids
    gen=$("$BATON" status -s "$W/ctl.sock" --json | python3 -c 'import json,sys; print([g["id"] for g in json.load(sys.stdin)["generations"] if g["state"] == "active"][0])')
    kids=$(pgrep -P "$SUP" | tr '\n' ' ' || true)
    kill -KILL "$SUP"; wait "$SUP" 2> /dev/null || true
    a=$(now_us)
    "$BATON" run "$W/svc.lua" 2>> "$W/sup.log" & SUP=$!
    adopted() { "$BATON" status -s "$W/ctl.sock" --json 2> /dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(not any(g["id"] == '"$gen"' and g["state"] == "active" and g.get("adopted") for g in s["generations"]))'; }
    if wait_until 60 adopted 2> /dev/null; then TAKE=$(( ($(now_us) - a) / 1000 )); else TAKE=-; fi
    # shellcheck disable=SC2086 # one pid a word: the killed supervisor's generation and keeper
    kill_tree $kids 2> /dev/null || true
}
LISTENER_COUNTS=${LISTENER_COUNTS:-1 1000 10000}
listeners() {
    local n a start restart cpu answered fds take base_start base_restart base_cpu base_take
    say "## 1,000 and 10,000 listeners handed over"
    say ""
    say "Start-up: \`baton run\` to the first generation serving (the kernel's search for a"
    say "free port, port 0, is most of it at 10,000); restart: \`baton restart\`, median"
    say "of 21, and the supervisor's own CPU per restart (over those 21); takeover: SIGKILL of the supervisor"
    say "to a new \`baton run\` serving with the generation adopted (- : not taken back)."
    say ""
    say "| listeners | start-up (ms) | ratio | restart (ms) | ratio | supervisor CPU a restart (ms) | takeover after SIGKILL (ms) | ports answering | supervisor fds |"
    say "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for n in $LISTENER_COUNTS; do
        listeners_service "$n"
        a=$(now_us); run_baton "$W/svc.lua"; start=$(( ($(now_us) - a) / 1000 ))
        a=$(sup_us)
        restart=$(median_of 21 restart_us | awk '{printf "%.1f", $1 / 1000}')
        cpu=$(awk -v u=$(( $(sup_us) - a )) 'BEGIN {printf "%.2f", u / 21000}')
        "$BATON" status -s "$W/ctl.sock" --json | tr -d ' \n' |
            grep -o '"address":"tcp://127.0.0.1:[0-9]*"' | grep -o '[0-9]*"$' | tr -d '"' > "$W/ports"
        # Every port answers (at most 1,000 of them, spread), served by the newest generation.
        answered=$(python3 - "$W/ports" <<'PY'
import socket, sys
ports = open(sys.argv[1]).read().split()
step = max(1, len(ports) // 1000)
ok = 0
for port in ports[::step]:
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=2)
    data = b""
    while True:
        chunk = s.recv(256)
        if not chunk:
            break
        data += chunk
    s.close()
    ok += data.endswith(b"ok\n")
print("%d of %d" % (ok, len(ports[::step])))
PY
)
        fds=$(fd_count "$SUP")
        takeover
        take=$TAKE
        stop_baton
        if [ "$n" = 1 ]; then base_start=$start base_restart=$restart; fi
        say "| $n | $start | $(awk -v a="$start" -v b="${base_start:-$start}" 'BEGIN {printf "%.2f", a / b}') | $restart | $(awk -v a="$restart" -v b="${base_restart:-$restart}" 'BEGIN {printf "%.2f", a / b}') | $cpu | $take | $answered | $fds |"
    done
    say ""
}

# --- paired: N listeners against 1, side by side ---------------------------------
restart_at_us() { # SOCKET: a `baton restart` through SOCKET, in microseconds
    local a
    a=$(now_us)
    "$BATON" restart -s "$1" > /dev/null
    echo $(( $(now_us) - a ))
}
active_at() { "$BATON" status -s "$1" 2> /dev/null | grep -q ' active '; }
paired() {
    local n=${PAIR_N:-1000} rounds=${ROUNDS:-41} r t1 tn c1 cn app=listeners_app
    [ "${PAIR_APP:-}" != hello ] || { APP=$HELLO app=examples/hello; }
    listeners_service 1 one
    listeners_service "$n" many
    "$BATON" run "$W/one.lua" 2> "$W/one.log" & SUP1=$!
    "$BATON" run "$W/many.lua" 2> "$W/many.log" & SUP=$!
    wait_until 60 active_at "$W/one.sock" || { tail -5 "$W/one.log" >&2; exit 1; }
    wait_until 60 active_at "$W/many.sock" || { tail -5 "$W/many.log" >&2; exit 1; }
    : > "$W/pairs"
    c1=$(cpu_ms "$SUP1") cn=$(cpu_ms "$SUP")
    for r in $(seq 1 "$rounds"); do
        # Which goes first alternates: neither always follows the other's drain.
        if [ $((r % 2)) -eq 1 ]; then
            t1=$(restart_at_us "$W/one.sock"); tn=$(restart_at_us "$W/many.sock")
        else
            tn=$(restart_at_us "$W/many.sock"); t1=$(restart_at_us "$W/one.sock")
        fi
        echo "$t1 $tn" >> "$W/pairs"
    done
    c1=$(( $(cpu_ms "$SUP1") - c1 )) cn=$(( $(cpu_ms "$SUP") - cn ))
    "$BATON" stop -s "$W/one.sock" > /dev/null 2>&1 || kill_tree "$SUP1"
    "$BATON" stop -s "$W/many.sock" > /dev/null 2>&1 || kill_tree "$SUP"
    wait "$SUP1" "$SUP" 2> /dev/null || true
    SUP="" SUP1=""
    local m1 mn mr q1 q3
    m1=$(awk '{print $1}' "$W/pairs" | median)
    mn=$(awk '{print $2}' "$W/pairs" | median)
    awk '{printf "%.4f\n", $2 / $1}' "$W/pairs" | sort -n > "$W/ratios"
    mr=$(median < "$W/ratios")
    q1=$(awk -v n="$rounds" 'NR == int(n / 4) + 1' "$W/ratios")
    q3=$(awk -v n="$rounds" 'NR == int(3 * n / 4) + 1' "$W/ratios")
    APP=""
    say "## A restart with $n listeners against one with 1, paired ($app)"
    say ""
    say "Both services run side by side; each round restarts one, then the other"
    say "(the order alternates); $rounds rounds. Ratio: the median of the per-round"
    say "ratios (quartiles beside it); CPU: each supervisor's own over all rounds."
    say ""
    say "| restart, 1 listener (ms) | restart, $n listeners (ms) | median ratio | quartiles | supervisor CPU a restart, 1 / $n (ms) |"
    say "|---:|---:|---:|---|---|"
    say "| $(awk -v u="$m1" 'BEGIN {printf "%.1f", u / 1000}') | $(awk -v u="$mn" 'BEGIN {printf "%.1f", u / 1000}') | $(printf %.2f "$mr") | $(printf %.2f "$q1")-$(printf %.2f "$q3") | $(awk -v a="$c1" -v b="$cn" -v r="$rounds" 'BEGIN {printf "%.2f / %.2f", a / r, b / r}') |"
    say ""
}

# --- 10,000 connections -------------------------------------------------------------
# connections_run POLICY OUT: 10,000 keep-alive clients for 12 s, 3 restarts
# under POLICY from the 3rd second (none for "none"); the loadgen line in OUT,
# the restart times in OUT.times, the connections open at the first in OUT.conns.
connections_run() {
    local port policy=$1 out=$2
    cat > "$W/svc.lua" <<LUA
return { name = 'scale', control = '$W/ctl.sock', listen = { http = 'tcp://127.0.0.1:0' },
         command = { '$HELLO' }, drain_timeout = 60,
         policy = $([ "$policy" = gradual ] && echo '{ "gradual", window = 1.5 }' || echo '"default"') }
LUA
    run_baton "$W/svc.lua"
    port=$("$BATON" status -s "$W/ctl.sock" --json | tr -d ' \n' | sed -n 's/.*"address":"tcp:\/\/127\.0\.0\.1:\([0-9]*\)".*/\1/p')
    "$LOADGEN" --port "$port" --keepalive 10000 --duration 12 --timeout-ms 10000 > "$out" 2>&1 & LPID=$!
    sleep 3 # all 10,000 connected and busy
    ss -Htn state established "( dport = :$port )" | wc -l > "$out.conns"
    : > "$out.times"
    if [ "$policy" != none ]; then
        for _ in 1 2 3; do
            echo -n " $(restart_ms)" >> "$out.times"
            sleep 2
        done
    fi
    wait "$LPID" || true; LPID=""
    stop_baton
}
connections() {
    connections_run none "$W/base.txt"
    connections_run default "$W/default.txt"
    connections_run gradual "$W/gradual.txt"
    failed() { echo $(( $(load_field "$1" connect_errors) + $(load_field "$1" non2xx) + $(load_field "$1" resets) + $(load_field "$1" eof) + $(load_field "$1" timeouts) )); }
    local base
    base=$(grep '^loadgen:' "$W/base.txt")
    row() { # LABEL FILE
        local l
        l=$(grep '^loadgen:' "$2")
        say "| $1 | $(cat "$2.conns") | $(load_field "$l" ok) | $(awk -v a="$(load_field "$l" ok)" -v b="$(load_field "$base" ok)" 'BEGIN {printf "%.2f", a / b}') | $(failed "$l") | $(load_field "$l" connects) | $(awk -v u="$(load_field "$l" p50_us)" 'BEGIN {print u/1000}') | $(awk -v u="$(load_field "$l" p99_us)" 'BEGIN {print u/1000}') | $(cat "$2.times") |"
    }
    say "## 10,000 open connections across a restart"
    say ""
    say "10,000 keep-alive clients for 12 s each run; 3 restarts from the 3rd second."
    say ""
    say "| run | connections open at the 3rd s | responses | ratio to baseline | failed | connections made | p50 (ms) | p99 (ms) | \`baton restart\` (ms) |"
    say "|---|---:|---:|---:|---:|---:|---:|---:|---|"
    row "no restart (baseline)" "$W/base.txt"
    row "3 restarts, default policy" "$W/default.txt"
    row "3 restarts, gradual policy (window 1.5 s)" "$W/gradual.txt"
    say ""
    say "Under the default policy the old generation answers every keep-alive"
    say "connection's next request with \`Connection: close\`, and all 10,000 clients"
    say "reconnect at once; the gradual policy spreads that over its window, where"
    say "clients may land on the old generation again and reconnect twice. Nothing"
    say "fails either way; what costs throughput is making 10,000 new connections on"
    say "the 2 cores the clients share."
    say ""
}

# --- 1,000 restarts in a row ---------------------------------------------------------
restarts() {
    cat > "$W/svc.lua" <<LUA
return { name = 'scale', control = '$W/ctl.sock', listen = { http = 'tcp://127.0.0.1:0' },
         command = { '$HELLO' } }
LUA
    run_baton "$W/svc.lua"
    local i a secs
    say "## 1,000 restarts in a row"
    say ""
    say "| restarts done | supervisor open fds | supervisor VmRSS (KiB) | live generations |"
    say "|---:|---:|---:|---:|"
    a=$(now_ms)
    for i in $(seq 0 1000); do
        if [ $((i % 100)) -eq 0 ]; then
            sleep 0.3 # let the last drain finish, so the sample is not mid-restart
            say "| $i | $(fd_count "$SUP") | $(rss_kib "$SUP") | $("$BATON" status -s "$W/ctl.sock" --json | tr -d ' \n' | grep -o '"state":"[a-z]*"' | grep -vc exited || true) |"
        fi
        [ "$i" -lt 1000 ] && "$BATON" restart -s "$W/ctl.sock" > /dev/null
    done
    secs=$(awk -v ms=$(( $(now_ms) - a )) 'BEGIN {printf "%.1f", ms / 1000}')
    stop_baton
    say ""
    say "1,000 restarts in ${secs} s."
    say ""
}

for what in "$@"; do
    "$what"
done
