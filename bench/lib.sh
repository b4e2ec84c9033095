# Helpers the benchmark scripts share: build, ports, waits, figures.
# shellcheck shell=bash
# Sourced; expects set -euo pipefail and the repository root as cwd.
. scripts/procs.sh # kill_tree: cleanup by pid
# A script's EXIT trap (its cleanup) runs on Ctrl-C and kill too.
trap 'exit 130' INT
trap 'exit 143' TERM

B=${BUILD:-build}
bench_build() {
    scripts/deps.sh "${1:-build}"
    # Always build: a benchmark of binaries older than the source measures
    # the wrong thing, and an up-to-date tree builds in a second.
    [ -f "$B/CMakeCache.txt" ] || cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
    cmake --build "$B" -j"$(nproc)" > /dev/null
    BATON=$PWD/$B/baton HELLO=$PWD/$B/examples/hello_server LOADGEN=$PWD/$B/bench/loadgen
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_us() { echo $(( $(date +%s%N) / 1000 )); }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
listeners_on() { ss -Hltn "sport = :$1" | wc -l; }
listening() { [ "$(listeners_on "$1")" -ge "$2" ]; }  # listening PORT COUNT
file_differs() { [ "$(cat "$1" 2>/dev/null)" != "$2" ]; } # file_differs FILE TEXT

# wait_until SECONDS COMMAND...: polls every 2 ms, until a deadline (the
# command's own time counts too).
wait_until() {
    local deadline=$(( $(date +%s%N) + $1 * 1000000000 ))
    shift
    while [ "$(date +%s%N)" -lt "$deadline" ]; do "$@" && return 0; sleep 0.002; done
    echo "timeout: $*" >&2
    return 1
}
gone() { ! kill -0 "$1" 2>/dev/null; }
all_gone() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
serves() { curl -sf -m 1 "http://127.0.0.1:$1/" > /dev/null; }

# children PID: its child pids, one per line.
children() { pgrep -P "$1" || true; }
# new_child PID OLD...: a child of PID that is not among OLD.
new_child() {
    local parent=$1 c
    shift
    for c in $(children "$parent"); do
        case " $* " in *" $c "*) ;; *) echo "$c"; return 0 ;; esac
    done
    return 1
}
has_new_child() { new_child "$@" > /dev/null; }

# CPU time (user + system, ms) and peak resident memory (KiB) of PID.
cpu_ms() {
    [ -r "/proc/$1/stat" ] || { echo 0; return; }
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "/proc/$1/stat"
}
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print 0; else print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# baton_active_pid SOCKET: the pid of the generation that serves.
baton_active_pid() {
    "$BATON" status -s "$1" --json | tr -d ' \n' |
        grep -o '"pid":[0-9]*,"state":"active"' | sed 's/"pid":\([0-9]*\).*/\1/'
}

# load_field LINE NAME: a field of loadgen's summary line.
load_field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
