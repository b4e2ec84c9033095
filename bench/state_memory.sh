#!/usr/bin/env bash
# The supervisor's memory while it holds a state blob, and a real restart
# that hands the blob over: baton, the handover policy, and an app
# (state_bench --app) that saves SIZE bytes when asked (SIGUSR1) and loads
# what it receives. The supervisor keeps the memfd, never a copy: its own
# memory (RssAnon: heap and stacks) should not grow by the blob's size, and
# the blob's pages show up once, as shared memory (Shmem in /proc/meminfo).
#   bench/state_memory.sh [SIZE]     (default 1G)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${1:-1G}
. bench/lib.sh
bench_build
W=$(mktemp -d /tmp/baton-state-mem.XXXXXX)
BPID=""
cleanup() { kill_tree "$BPID"; rm -rf "$W"; }
trap cleanup EXIT
cat > "$W/svc.lua" <<LUA
return { name = "state-mem", control = "$W/ctl.sock",
         command = { "$PWD/$B/bench/state_bench", "--app", "$SIZE" },
         state = { version = 1, max_size = "4G" }, ready_timeout = 60,
         policy = { "handover", checkpoint_timeout = 60 } }
LUA
"$B/baton" run "$W/svc.lua" 2> "$W/sup.log" & BPID=$!
for _ in $(seq 1 100); do "$B/baton" status -s "$W/ctl.sock" > /dev/null 2>&1 && break; sleep 0.05; done

kib() { awk -v k="$1" '$1 == k":" {print $2}' "$2"; }
mem() { # supervisor RssAnon, VmRSS (KiB); system Shmem (KiB)
    echo "$(kib RssAnon /proc/$BPID/status) $(kib VmRSS /proc/$BPID/status) $(kib Shmem /proc/meminfo)"
}
read -r anon0 rss0 shm0 <<< "$(mem)"
a=$(date +%s%N)
"$B/baton" restart -s "$W/ctl.sock" > /dev/null
b=$(date +%s%N)
sleep 0.5 # the old generation's exit and the log lines
read -r anon1 rss1 shm1 <<< "$(mem)"
made=$(sed -n 's/.*made [0-9]* bytes in \([0-9.]*\) ms.*/\1/p' "$W/sup.log" | tail -1)
saved=$(sed -n 's/.*saved them in \([0-9.]*\) ms.*/\1/p' "$W/sup.log" | tail -1)
checked=$(sed -n 's/.*stored its state: .*(checked in \([0-9.]*\) ms).*/\1/p' "$W/sup.log" | tail -1)
loaded=$(sed -n 's/.*loaded [0-9]* bytes in \([0-9.]*\) ms.*/\1/p' "$W/sup.log" | tail -1)
echo "state handover of $SIZE through a real supervisor (handover policy)"
echo "  baton restart, start to finish        $(( (b - a) / 1000000 )) ms"
echo "    app: make its state (malloc, fill)  ${made} ms"
echo "    app: save (memfd, CRC-32C, seal)    ${saved} ms"
echo "    supervisor: check on arrival        ${checked} ms"
echo "    next generation: load and read all  ${loaded} ms"
echo "  supervisor RssAnon   ${anon0} -> ${anon1} KiB   (its own memory: +$((anon1 - anon0)) KiB)"
echo "  supervisor VmRSS     ${rss0} -> ${rss1} KiB"
echo "  system Shmem         ${shm0} -> ${shm1} KiB   (+$(( (shm1 - shm0) / 1024 )) MiB: the blob, once)"
"$B/baton" stop -s "$W/ctl.sock" > /dev/null
wait "$BPID" || true
BPID=""
