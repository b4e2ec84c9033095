#!/usr/bin/env bash
# baton against the peers, on the same work, in one run: each way restarts
# the thing it is built to restart, many times, under the same load.
#
#   baton-default   baton restart, default policy (the example server)
#   baton-graceful  baton restart, graceful policy (old drains until idle)
#   stop-start      SIGTERM the example server, start it again
#   reuseport       a new example server on its own SO_REUSEPORT socket
#                   beside the old, then SIGTERM the old
#   nginx-reload    nginx -s reload (new workers, old ones finish)
#   nginx-upgrade   nginx binary upgrade: USR2, then QUIT the old master
#   haproxy-mw      HAProxy master-worker reload (USR2 to the master); 2.6
#                   hands the listeners to the new worker (-x sockpair@)
#   haproxy-sf      HAProxy without socket transfer: a new process binds
#                   its own sockets and tells the old one to finish (-sf)
#
# nginx and HAProxy serve a static response themselves. Two loads, each
# with its own run of every way: "close" (16 clients, one request per new
# connection) and "keepalive" (16 long-lived keep-alive connections).
#
# For each way and load: failed connections and failed requests per 1000
# restarts; p50/p99 latency during the restarts against a steady run of
# the same way just before; the median time from the restart command to the
# new process serving and to the old one gone; the CPU time per restart and
# resident memory of the supervising process (baton, nginx's master,
# HAProxy's master). Writes bench/results/peers.md (the table),
# bench/results/peers.tsv, and PNG plots drawn with gnuplot.
#
#   bench/peers.sh [RESTARTS]        (default 100 per way and load)
#   STEADY=3 GAP=0.1 bench/peers.sh  (steady-run seconds, pause between restarts)
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
RESTARTS=${1:-100}
STEADY=${STEADY:-3}
GAP=${GAP:-0.1}
WAYS=${WAYS:-"baton-default baton-graceful stop-start reuseport nginx-reload nginx-upgrade haproxy-mw haproxy-sf"}
LOADS=${LOADS:-"close keepalive"}
case "$RESTARTS" in '' | *[!0-9]* | 0) echo "peers: RESTARTS must be a whole number above 0, not '$RESTARTS'" >&2; exit 2 ;; esac
for w in $WAYS; do
    case "$w" in
        baton-default | baton-graceful | stop-start | reuseport | nginx-reload | nginx-upgrade | haproxy-mw | haproxy-sf) ;;
        *) echo "peers: unknown way '$w'" >&2; exit 2 ;;
    esac
done
for l in $LOADS; do
    case "$l" in close | keepalive) ;; *) echo "peers: unknown load '$l' (close, keepalive)" >&2; exit 2 ;; esac
done
bench_build bench
OUT=bench/results
mkdir -p "$OUT"
W=$(mktemp -d /tmp/baton-peers.XXXXXX)
SUP="" APP="" LPID="" WAY=""
cleanup() {
    # What the way started, by pid, at once (a graceful stop first would let
    # an nginx mid-upgrade orphan its new master): the load, the supervising
    # process and app, the daemons nginx and HAProxy became (their pid
    # files), and every process below them.
    local daemons
    daemons=$(cat "$W"/nginx.pid "$W"/nginx.pid.oldbin "$W"/haproxy.pid 2> /dev/null || true)
    # shellcheck disable=SC2086 # one pid a word
    kill_tree "$LPID" "$SUP" "$APP" $daemons
    rm -rf "$W"
}
trap cleanup EXIT

# --- the ways: <way>_start, <way>_restart (sets T_NEW, T_GONE in us), stop --

hello() { "$HELLO" --bind "127.0.0.1:$PORT" "$@" 2>/dev/null & APP=$!; }

baton_start() {
    cat > "$W/svc.lua" <<LUA
return { name = "peers", control = "$W/ctl.sock", listen = { http = "tcp://127.0.0.1:$PORT" },
         command = { "$HELLO" }, ready_timeout = 30, drain_timeout = 30, policy = "$1" }
LUA
    "$BATON" run "$W/svc.lua" 2> "$W/sup.log" & SUP=$!
    wait_until 10 serves "$PORT"
}
baton_restart() {
    local old a
    # The serving process, from the process table: a `baton status` here
    # would count its own cost (a dump of the kernel's TCP table, 9 ms on
    # a host with many TIME_WAIT sockets) in the supervisor's CPU per
    # restart. The one before is gone (waited for below).
    old=$(pgrep -P "$SUP" -x "$(basename "$HELLO" | cut -c 1-15)" | head -1)
    a=$(now_us)
    "$BATON" restart -s "$W/ctl.sock" > /dev/null
    T_NEW=$(( $(now_us) - a ))
    wait_until 60 gone "$old"
    T_GONE=$(( $(now_us) - a ))
}
baton_stop() { "$BATON" stop -s "$W/ctl.sock" > /dev/null 2>&1 || true; wait "$SUP" 2>/dev/null || true; }

baton-default_start() { baton_start default; }
baton-graceful_start() { baton_start graceful; }
baton-default_restart() { baton_restart; }
baton-graceful_restart() { baton_restart; }

stop-start_start() { hello; wait_until 10 serves "$PORT"; }
stop-start_restart() {
    local a
    a=$(now_us)
    kill -TERM "$APP"
    wait "$APP" 2>/dev/null || true
    T_GONE=$(( $(now_us) - a ))
    hello
    wait_until 10 listening "$PORT" 1
    T_NEW=$(( $(now_us) - a ))
}
app_stop() { kill -TERM "$APP" 2>/dev/null || true; wait "$APP" 2>/dev/null || true; }

reuseport_start() { hello --reuseport; wait_until 10 serves "$PORT"; }
reuseport_restart() {
    local a old=$APP
    a=$(now_us)
    hello --reuseport
    wait_until 10 listening "$PORT" 2
    T_NEW=$(( $(now_us) - a ))
    kill -TERM "$old"
    wait "$old" 2>/dev/null || true
    T_GONE=$(( $(now_us) - a ))
}

nginx_conf() {
    cat > "$W/nginx.conf" <<CONF
worker_processes 1;
pid $W/nginx.pid;
error_log $W/nginx.err warn;
events { worker_connections 16384; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$PORT; location / { return 200 "hello\n"; } }
}
CONF
}
nginx_start() {
    nginx_conf
    # An absolute path: the binary upgrade re-executes argv[0].
    /usr/sbin/nginx -c "$W/nginx.conf" -p "$W" -e "$W/nginx.err"
    wait_until 10 test -s "$W/nginx.pid"
    SUP=$(cat "$W/nginx.pid")
    wait_until 10 serves "$PORT"
}
nginx-reload_start() { nginx_start; }
nginx-upgrade_start() { nginx_start; }
nginx-reload_restart() {
    local a olds
    olds=$(children "$SUP")
    a=$(now_us)
    kill -HUP "$SUP" # what `nginx -s reload` sends
    # shellcheck disable=SC2086
    wait_until 30 has_new_child "$SUP" $olds
    T_NEW=$(( $(now_us) - a ))
    # shellcheck disable=SC2086
    wait_until 60 all_gone $olds
    T_GONE=$(( $(now_us) - a ))
}
nginx-upgrade_restart() {
    local a old=$SUP new
    a=$(now_us)
    kill -USR2 "$old"
    wait_until 30 test -s "$W/nginx.pid.oldbin"
    # The new master's pid file: there (nginx renames the old one first, so
    # for a moment there is none, which differs from OLD too) and new.
    new_pid_file() { [ -s "$W/nginx.pid" ] && file_differs "$W/nginx.pid" "$old"; }
    wait_until 30 new_pid_file
    new=$(cat "$W/nginx.pid")
    wait_until 30 has_new_child "$new"
    T_NEW=$(( $(now_us) - a ))
    kill -QUIT "$old"
    wait_until 60 gone "$old"
    T_GONE=$(( $(now_us) - a ))
    SUP=$new
}
nginx_stop() {
    [ -s "$W/nginx.pid" ] && kill -QUIT "$(cat "$W/nginx.pid")" 2>/dev/null || true
    wait_until 10 test ! -e "$W/nginx.pid" || true
}

haproxy_conf() {
    cat > "$W/haproxy.cfg" <<CONF
global
  maxconn 8000
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 5s
  timeout http-keep-alive 30s
frontend fe
  bind 127.0.0.1:$PORT
  http-request return status 200 content-type text/plain string "hello"
CONF
}
haproxy-mw_start() {
    haproxy_conf
    haproxy -W -f "$W/haproxy.cfg" > "$W/haproxy.log" 2>&1 & SUP=$!
    wait_until 10 serves "$PORT"
}
haproxy-mw_restart() {
    local a olds
    olds=$(children "$SUP")
    a=$(now_us)
    kill -USR2 "$SUP"
    # shellcheck disable=SC2086
    wait_until 30 has_new_child "$SUP" $olds
    T_NEW=$(( $(now_us) - a ))
    # shellcheck disable=SC2086
    wait_until 60 all_gone $olds
    T_GONE=$(( $(now_us) - a ))
}
haproxy-sf_start() {
    haproxy_conf
    haproxy -f "$W/haproxy.cfg" -D -p "$W/haproxy.pid"
    SUP=$(head -1 "$W/haproxy.pid")
    wait_until 10 serves "$PORT"
}
haproxy-sf_restart() {
    local a old=$SUP
    a=$(now_us)
    haproxy -f "$W/haproxy.cfg" -D -p "$W/haproxy.pid" -sf "$old"
    SUP=$(head -1 "$W/haproxy.pid")
    T_NEW=$(( $(now_us) - a ))
    wait_until 60 gone "$old"
    T_GONE=$(( $(now_us) - a ))
}

way_stop() {
    case "$WAY" in
        baton-*) baton_stop ;;
        stop-start | reuseport) app_stop ;;
        nginx-*) nginx_stop ;;
        haproxy-mw) kill -USR1 "$SUP" 2>/dev/null; wait "$SUP" 2>/dev/null || true ;;
        haproxy-sf) kill -USR1 "$SUP" 2>/dev/null; wait_until 10 gone "$SUP" || true ;;
    esac
    SUP="" APP=""
}
supervised() { case "$WAY" in stop-start | reuseport) return 1 ;; esac; }
# Ways whose supervising process is replaced at each restart: no CPU figure.
replaced() { case "$WAY" in nginx-upgrade | haproxy-sf) return 0 ;; esac; return 1; }

load_args() {
    case "$1" in
        close) echo "--close 16" ;;
        keepalive) echo "--keepalive 16" ;;
    esac
}

# --- one way under one load ---------------------------------------------------

run() {
    WAY=$1 LOAD=$2
    PORT=$(free_port)
    "${WAY}_start"
    # shellcheck disable=SC2046
    "$LOADGEN" --port "$PORT" $(load_args "$LOAD") --duration "$STEADY" > "$W/steady" 2>&1
    local steady
    steady=$(grep '^loadgen:' "$W/steady")
    # shellcheck disable=SC2046
    "$LOADGEN" --port "$PORT" $(load_args "$LOAD") --duration 600 --timeline-ms 100 \
        > "$OUT/timeline-$WAY-$LOAD.txt" 2>&1 & LPID=$!
    sleep 0.5
    local cpu0=0 cpu1=0 rss=0 i
    if supervised && ! replaced; then cpu0=$(cpu_ms "$SUP"); fi
    : > "$W/t_new"
    : > "$W/t_gone"
    : > "$OUT/restarts-$WAY-$LOAD.txt"
    for i in $(seq 1 "$RESTARTS"); do
        now_ms >> "$OUT/restarts-$WAY-$LOAD.txt"
        "${WAY}_restart"
        echo "$T_NEW" >> "$W/t_new"
        echo "$T_GONE" >> "$W/t_gone"
        sleep "$GAP"
    done
    if supervised; then
        replaced || cpu1=$(cpu_ms "$SUP")
        rss=$(rss_kib "$SUP")
    fi
    sleep 0.5
    kill -INT "$LPID"
    wait "$LPID" || true
    LPID=""
    way_stop
    local during
    during=$(grep '^loadgen:' "$OUT/timeline-$WAY-$LOAD.txt")
    local conn req
    conn=$(load_field "$during" connect_errors)
    req=$(( $(load_field "$during" non2xx) + $(load_field "$during" resets) +
            $(load_field "$during" eof) + $(load_field "$during" timeouts) ))
    local cpu="-" mem="-"
    if supervised; then
        mem=$rss
        replaced || cpu=$(awk -v d=$((cpu1 - cpu0)) -v r="$RESTARTS" 'BEGIN {printf "%.2f", d / r}')
    fi
    printf '%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$WAY" "$LOAD" "$RESTARTS" \
        "$(load_field "$during" ok)" "$conn" "$req" \
        "$(awk -v c="$conn" -v r="$RESTARTS" 'BEGIN {printf "%.1f", c * 1000 / r}')" \
        "$(awk -v c="$req" -v r="$RESTARTS" 'BEGIN {printf "%.1f", c * 1000 / r}')" \
        "$(load_field "$steady" p50_us)" "$(load_field "$steady" p99_us)" \
        "$(load_field "$during" p50_us)" "$(load_field "$during" p99_us)" \
        "$(median < "$W/t_new" | awk '{printf "%.1f", $1 / 1000}')" \
        "$(median < "$W/t_gone" | awk '{printf "%.1f", $1 / 1000}')" \
        "$cpu/$mem" | tee -a "$OUT/peers.tsv"
}

printf 'way\tload\trestarts\tok\tfailed_conns\tfailed_reqs\tconns_per_1000\treqs_per_1000\tsteady_p50_us\tsteady_p99_us\trestart_p50_us\trestart_p99_us\tnew_serving_ms\told_gone_ms\tsup_cpu_ms_per_restart/rss_kib\n' > "$OUT/peers.tsv"
for load in $LOADS; do
    for way in $WAYS; do
        run "$way" "$load"
    done
done
bench/peers_report.sh "$OUT" "$RESTARTS"
