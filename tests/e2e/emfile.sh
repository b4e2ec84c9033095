#!/usr/bin/env bash
# A supervisor short of file descriptors says so, and keeps its control
# socket. Started with a hard limit of 32 fds (it warns at start that it
# may need more), it is asked for 16 restarts at once, each client holding
# a connection to the control socket. Some restarts fail: each reason (the
# client's or the log's) says the supervisor ran short of fds, with how
# many are open; nothing spins (the log stays short); afterwards `baton
# status` answers and a restart takes over; the generation serving the load
# client (which has its own fds) loses no request.
. "$(dirname "$0")/lib.sh"

command -v prlimit > /dev/null || { echo "skip: no prlimit"; exit 77; }
hello_service
prlimit --nofile=32:32 "$BATON" run "$T/service.lua" > "$T/sup.log" 2>&1 &
BPID=$!
wait_for 15 has_active || fail "no active generation"
grep -q "the open-file limit is 32 and the supervisor may need up to" "$T/sup.log" ||
    fail "no warning about the limit at start"
PORT=$("$BATON" status -s "$SOCK" --json | tr -d ' \n' |
    sed -n 's/.*"address":"tcp:\/\/127\.0\.0\.1:\([0-9]*\)".*/\1/p')
"$LOADGEN" --port "$PORT" --keepalive 2 --close 2 --duration 300 > "$T/load.log" &
LPID=$!
sleep 0.5

pids=()
for i in $(seq 1 16); do
    timeout 60 "$BATON" restart -s "$SOCK" > "$T/r$i.out" 2>&1 &
    pids+=($!)
done
ok=0 failed=0
for i in $(seq 1 16); do
    if wait "${pids[$((i - 1))]}"; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
done
echo "16 restarts at once: $ok took over, $failed did not"
short=$(grep -c "ran short of fds\|accept: too many open files (the supervisor: [0-9]* of 32 fds open)" "$T/sup.log" || true)
[ "$failed" -eq 0 ] || [ "$short" -gt 0 ] || {
    cat "$T"/r*.out
    fail "$failed restarts failed and the log never says the supervisor ran short of fds"
}
for f in "$T"/r*.out; do
    if grep -q "rolled back" "$f" && ! grep -q "ran short of fds\|not ready\|stopping" "$f"; then
        fail "a rollback that does not say why in terms of fds: $(cat "$f")"
    fi
done
lines=$(wc -l < "$T/sup.log")
[ "$lines" -lt 3000 ] || fail "the log grew to $lines lines: something spins"
wait_for 10 "$BATON" status -s "$SOCK" || fail "the control socket does not answer after the burst"
wait_for 20 "$BATON" restart -s "$SOCK" || fail "no restart takes over after the burst"
echo "ok: after the burst: status answers, a restart takes over ($short log lines say what ran short)"
stop_load
assert_no_load_errors 50
stop_baton
echo "ok: short of fds, said so, kept its control socket, $LOAD"
