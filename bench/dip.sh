#!/usr/bin/env bash
# The throughput dip during restarts at a fixed rate: baton (default
# policy) and the reuseport way (a new examples/hello on its own
# SO_REUSEPORT socket, then SIGTERM the old) restart the same app, one
# restart every PERIOD seconds whatever a restart takes, under the same
# load (16 clients, a new connection per request). For each way, in turn
# and ROUNDS times: responses a second over SECS seconds with no restart,
# then over SECS seconds of restarts, in one load run (so the machine's
# drift falls on both alike); the dip is 1 - restarts / quiet.
# Prints each way's median dip, the supervisor's CPU during the restarts
# and the app's start-up (exec to serving), and the ratio of the dips.
#
#   bench/dip.sh         (RUNS=3 of each way in turn; ROUNDS=4 SECS=2 PERIOD=0.5 LOAD=close)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
ROUNDS=${ROUNDS:-4} SECS=${SECS:-2} PERIOD=${PERIOD:-0.5} LOAD=${LOAD:-close}
case "$LOAD" in close) LARGS="--close 16" ;; keepalive) LARGS="--keepalive 16" ;; *) echo "dip: LOAD is close or keepalive" >&2; exit 2 ;; esac
bench_build bench
W=$(mktemp -d /tmp/baton-dip.XXXXXX)
export XDG_RUNTIME_DIR="$W/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
SUP="" APP="" LPID=""
cleanup() {
    kill_tree "$LPID" "$SUP" "$APP"
    rm -rf "$W"
}
trap cleanup EXIT

hello() { "$HELLO" --bind "127.0.0.1:$PORT" "$@" 2> /dev/null & APP=$!; }
baton_start() {
    cat > "$W/svc.lua" <<LUA
return { name = "dip", control = "$W/ctl.sock", listen = { http = "tcp://127.0.0.1:$PORT" },
         command = { "$HELLO" }, ready_timeout = 30, drain_timeout = 30 }
LUA
    "$BATON" run "$W/svc.lua" 2> "$W/sup.log" & SUP=$!
    wait_until 10 serves "$PORT"
}
baton_restart() { "$BATON" restart -s "$W/ctl.sock" > /dev/null; }
baton_stop() { "$BATON" stop -s "$W/ctl.sock" > /dev/null 2>&1 || true; wait "$SUP" 2> /dev/null || true; SUP=""; }
reuseport_start() { hello --reuseport; wait_until 10 serves "$PORT"; }
reuseport_restart() {
    local old=$APP
    hello --reuseport
    wait_until 10 listening "$PORT" 2
    kill -TERM "$old"
    wait "$old" 2> /dev/null || true
}
reuseport_stop() { kill -TERM "$APP" 2> /dev/null || true; wait "$APP" 2> /dev/null || true; APP=""; }

# one WAY: one load run of ROUNDS pairs of blocks, SECS seconds each: a
# block with no restart, then a block with a restart every PERIOD seconds
# (the next restart at its tick, however long the last one took). Prints
# "quiet/s restarts/s restarts cpu_ms": responses a second, from the load's
# 100 ms timeline, over the blocks of each kind (their first 200 ms left
# out: a restart of the block before may still be under way).
one() {
    local way=$1 c0=0 c1=0 n=0 r a next end tick
    tick=$(awk -v p="$PERIOD" 'BEGIN {print int(p * 1000)}')
    PORT=$(free_port)
    "${way}_start"
    # shellcheck disable=SC2086
    "$LOADGEN" --port "$PORT" $LARGS --duration $((2 * ROUNDS * SECS + 2)) --timeline-ms 100 > "$W/load" 2>&1 & LPID=$!
    sleep 1
    [ -z "$SUP" ] || c0=$(cpu_ms "$SUP")
    : > "$W/blocks"
    for r in $(seq 1 "$ROUNDS"); do
        a=$(now_ms)
        sleep "$SECS"
        echo "quiet $a $(now_ms)" >> "$W/blocks"
        a=$(now_ms) next=$(now_ms) end=$(( $(now_ms) + SECS * 1000 ))
        while [ "$(now_ms)" -lt "$end" ]; do
            "${way}_restart"
            n=$((n + 1))
            next=$((next + tick))
            local wait_ms=$((next - $(now_ms)))
            [ "$wait_ms" -le 0 ] || sleep "$(awk -v m="$wait_ms" 'BEGIN {printf "%.3f", m / 1000}')"
        done
        echo "restarts $a $(now_ms)" >> "$W/blocks"
    done
    [ -z "$SUP" ] || c1=$(cpu_ms "$SUP")
    kill -INT "$LPID"
    wait "$LPID" || true
    LPID=""
    "${way}_stop"
    awk -v n="$n" -v cpu=$((c1 - c0)) '
        FNR == NR { kind[NR] = $1; from[NR] = $2 + 200; to[NR] = $3; nb = NR; next }
        /^t=/ { split($2, e, "="); split($3, o, "="); t = e[2]
                for (i = 1; i <= nb; i++) if (t > from[i] && t <= to[i]) { ok[kind[i]] += o[2]; ticks[kind[i]]++ } }
        END { printf "%.0f %.0f %d %d\n", ok["quiet"] * 10 / ticks["quiet"], ok["restarts"] * 10 / ticks["restarts"], n, cpu }' \
        "$W/blocks" "$W/load"
}

echo "dip: $ROUNDS rounds, ${SECS} s quiet then ${SECS} s with a restart every ${PERIOD} s, load $LOAD"
printf '%-10s %6s %10s %10s %7s %9s %14s\n' way run quiet/s during/s dip restarts "sup CPU/restart"
: > "$W/baton" && : > "$W/reuseport"
for r in $(seq 1 "${RUNS:-3}"); do
    for way in baton reuseport; do
        read -r s d n c < <(one "$way")
        dip=$(awk -v s="$s" -v d="$d" 'BEGIN {printf "%.3f", 1 - d / s}')
        echo "$dip" >> "$W/$way"
        printf '%-10s %6s %10s %10s %7s %9s %14s\n' "$way" "$r" "$s" "$d" "$dip" "$n" \
            "$(awk -v c="$c" -v n="$n" 'BEGIN {if (c > 0) printf "%.2f ms", c / n; else print "-"}')"
    done
done
b=$(median < "$W/baton") p=$(median < "$W/reuseport")
echo "median dip: baton $b, reuseport $p; baton - reuseport $(awk -v b="$b" -v p="$p" 'BEGIN {printf "%.3f", b - p}')"
