#!/usr/bin/env bash
# The gradual policy with real processes under keep-alive load: during the
# window the old generation sheds its connections a few at a time (they
# reconnect, through the shared socket, more and more to the new one); at
# the end it is told to drain. No request fails.
. "$(dirname "$0")/lib.sh"

cat > "$T/service.lua" <<LUA
return {
  name = "gradual-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  policy = { "gradual", window = 3 },
}
LUA
start_baton
"$LOADGEN" --port "$PORT" --keepalive 16 --duration 300 > "$T/load.log" &
LPID=$!
sleep 0.5
conns_of() { # the open connections of generation $1, as it counts them
    "$BATON" stats -s "$SOCK" --json | tr -d ' \n' |
        grep -o '"name":"http.connections"[^]]*' | grep -o "\"$1\":[0-9.]*" | cut -d: -f2 | cut -d. -f1
}
before=$(conns_of 1)
[ "${before:-0}" -ge 8 ] || fail "generation 1 should hold the load's connections, has ${before:-none}"
"$BATON" restart -s "$SOCK" > /dev/null || fail "restart failed"
sleep 1.5
mid=$(conns_of 1)
moved=$(conns_of 2)
[ "${mid:-0}" -lt "$before" ] || fail "no connection left generation 1 half way ($before -> $mid)"
[ "${mid:-0}" -gt 0 ] || fail "generation 1 lost every connection at once half way"
[ "${moved:-0}" -gt 0 ] || fail "generation 2 took no connection"
grep -q "generation 1 drains gradually for 3s" "$T/sup.log" || fail "no gradual drain logged"
wait_for 10 grep -q "generation 1 drained" "$T/sup.log" || fail "generation 1 did not finish"
stop_load
assert_no_load_errors 1000
shed=$("$BATON" stats -s "$SOCK" --json | tr -d ' \n' | grep -o '"name":"http.shed","type":"counter","value":[0-9.]*' | sed 's/.*://')
[ "${shed%.*}" -gt 0 ] || fail "no connection was shed"
stop_baton
echo "ok: gradual: generation 1 held $before connections, $mid half way (generation 2: $moved), $shed shed; $LOAD"
