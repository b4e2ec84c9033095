#!/usr/bin/env bash
# An adopted generation's death is noticed, and the service carries on,
# whether the host gives a pidfd to watch it by or not (run under
# KERNEL_PROFILE=4.18 too: pidfd_open answers ENOSYS, and the supervisor
# polls the process instead):
#   1. under keep-alive and new-connection load, SIGKILL the supervisor and
#      start it again: the generation is adopted, not one request fails,
#      and the log says how it is watched (by its pidfd, or by polling),
#      never that its exit would go unnoticed;
#   2. SIGKILL that generation: a new one is active and serves within a
#      few seconds; only requests in flight at the kill fail (at most one
#      per load worker), none is refused;
#   3. `baton restart` hands over under load with no failed request;
#   4. `baton status --json` carries the host report, its pidfd entry
#      "native" or, under 4.18, "fallback: ...".
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/takeover_lib.sh"
export XDG_RUNTIME_DIR="$T/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
SVC="$T/service.lua"
hello_service
: > "$T/sup.log"
run_baton
wait_for 15 has_active || fail "supervisor did not bring up an active generation"
view
PORT=$VPORT
start_load

# 1. The supervisor dies; another adopts the generation.
before=$VACT before_pid=$VACTPID
# shellcheck disable=SC2046 # one pid a word
track $(ps -o pid= --ppid "$BPID")
kill -KILL "$BPID"
wait "$BPID" 2> /dev/null || true
run_baton
wait_for 10 adopted_serving "$before" "$before_pid" ||
    fail "generation $before (pid $before_pid) not adopted: $(view_text)"
! grep -q "will go unnoticed" "$T/sup.log" || fail "$(grep "will go unnoticed" "$T/sup.log")"
pidfd=$("$BATON" status -s "$SOCK" --json | json_field host.pidfd)
case "${KERNEL_PROFILE:-}" in
    3.10|4.18|4.18,*)
        [[ $pidfd == fallback:* ]] || fail "host.pidfd is '$pidfd' under $KERNEL_PROFILE"
        grep -q "generation $before (pid $before_pid): no pidfd (Function not implemented): watching it every" \
            "$T/sup.log" || fail "no word of how generation $before is watched"
        ;;
    *) [ "$pidfd" = native ] || fail "host.pidfd is '$pidfd'" ;;
esac
stop_load
assert_no_load_errors 100
echo "ok: 1. adopted generation $before, watched: $pidfd"

# 2. The adopted generation dies: a new one takes its place.
start_load
sleep 0.5
kill -KILL "$before_pid"
new_serving() { view && [ "$VACT" != - ] && [ "$VACT" != "$before" ] && curl -sf -m 1 "http://127.0.0.1:$PORT/" > /dev/null; }
wait_for 10 new_serving || fail "no new generation serves after $before died: $(view_text); $(tail -5 "$T/sup.log")"
after=$VACT
sleep 0.5
stop_load
failed=0
for f in resets eof timeouts; do failed=$((failed + $(load_field $f))); done
[ "$(load_field connect_errors)" = 0 ] || fail "connections refused while generation $before died: $LOAD"
[ "$(load_field non2xx)" = 0 ] || fail "non-2xx answers: $LOAD"
[ "$failed" -le 16 ] || fail "$failed requests failed, more than the 16 load workers had in flight: $LOAD"
[ "$(load_field ok)" -gt 100 ] || fail "too few responses: $LOAD"
echo "ok: 2. generation $before killed, $after serves; $failed requests in flight at the kill failed: $LOAD"

# 3. A restart of the generation this supervisor started.
start_load
out=$("$BATON" restart -s "$SOCK") || fail "restart exited non-zero: $out"
sleep 0.3
stop_load
assert_no_load_errors 100
echo "ok: 3. baton restart: $out"
stop_baton
wait_for 5 tracked_left || fail "left behind after baton stop:$LEFT"
echo "ok: 4. stopped; nothing left"
