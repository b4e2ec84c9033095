#!/usr/bin/env bash
# The graceful policy ends a drain by idleness, not by its deadline,
# whether the kernel's socket tables are read by netlink sock_diag or, where
# that is refused (KERNEL_PROFILE=nosockdiag: Docker's default seccomp
# profile, gVisor), from /proc/net/tcp: under keep-alive and new-connection
# load, `baton restart` with an app that lingers after its drain
# (--stay) and a 30 s deadline; the old generation is ended as soon as it
# holds no connection and no listener, well before the deadline, with no
# failed request. Status carries the host's sock_diag entry: "native", or
# "fallback: ..." under nosockdiag, and the figures stay readable
# (connections per generation, the listener's queue and backlog).
. "$(dirname "$0")/lib.sh"
cat > "$T/service.lua" <<LUA
return {
  name = "graceful-idle-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO", "--mode-file", "$T/mode", "--stay" },
  ready_timeout = 5,
  drain_timeout = 3, -- the stop's: the app stays after its drain
  policy = { "graceful", deadline = 30 },
}
LUA
start_baton
diag=$("$BATON" status -s "$SOCK" --json | json_field host.sock_diag)
case ",${KERNEL_PROFILE:-}," in
    *,nosockdiag,*) [[ $diag == "fallback: "*"/proc/net/tcp"* ]] || fail "host.sock_diag is '$diag' under nosockdiag" ;;
    *) [ "$diag" = native ] || fail "host.sock_diag is '$diag'" ;;
esac
start_load
# The figures come from the socket tables: the active generation holds the
# load's keep-alive connections, and the listener has its backlog.
holds_conns() { [ "$("$BATON" status -s "$SOCK" --json | json_field 'generations[state=active].connections')" -ge 8 ]; }
wait_for 5 holds_conns || fail "status shows no connections on the active generation: $("$BATON" status -s "$SOCK" --json)"
[ "$("$BATON" status -s "$SOCK" --json | json_field 'listeners.0.max_queue')" -gt 0 ] ||
    fail "status shows no backlog on the listener"
t0=$(date +%s%N)
"$BATON" restart -s "$SOCK" > /dev/null || fail "graceful restart failed"
# Each read of /proc/net/tcp costs the kernel's formatting of every TCP
# socket of the host (tens of thousands of TIME_WAITs on a busy test host:
# 0.3 s), and a read that costs more is repeated less often (core.c): the
# drain ends later than by sock_diag, but by idleness.
wait_for 28 grep -q "generation 1 is idle: ending its drain early" "$T/sup.log" ||
    fail "the drain did not end by idleness: $(grep -i "generation 1" "$T/sup.log" | tail -3)"
took=$(( ($(date +%s%N) - t0) / 1000000 ))
! grep -q "generation 1 still running at its drain deadline" "$T/sup.log" || fail "generation 1 was killed at its deadline"
stop_load
assert_no_load_errors 500
stop_baton
echo "ok: sock_diag $diag; the drain ended by idleness after ${took} ms, not at the 30 s deadline: $LOAD"
