#!/usr/bin/env bash
# A client command given the service file (-f FILE) reads only what it
# needs of it, the `control` key: a policy or a service file broken on disk
# since the supervisor started must not lock out status, events, restart,
# rollback, reload and stop (they exited 2, "usage", when they loaded the
# whole file and its policy to find the socket).
. "$(dirname "$0")/lib.sh"
unset BATON_CONTROL

cat > "$T/policy.lua" <<'LUA'
return require("baton.policies.default")
LUA
cat > "$T/service.lua" <<LUA
return {
  name = "broken-files",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  policy = "policy.lua",
}
LUA
good=$(cat "$T/service.lua")
start_baton
start_load

# client WANT_RC CMD...: runs `baton CMD -f service.lua`, wants exit WANT_RC.
client() {
    local want=$1 rc=0 out
    shift
    out=$("$BATON" "$@" -f "$T/service.lua" 2>&1) || rc=$?
    [ $rc -eq "$want" ] || fail "$CASE: baton $* -f exited $rc (want $want): $out"
    LAST=$out
}
all_commands() {
    client 0 status
    client 0 events
    client 0 restart
    client 1 rollback # nothing to roll back: refused by the supervisor, not a usage error
    echo "$LAST" | grep -q "nothing to roll back" || fail "$CASE: rollback said: $LAST"
    client 1 reload # refused by the running supervisor, with its reason
    echo "$LAST" | grep -q "$1" || fail "$CASE: reload said '$LAST', want '$1'"
    echo "ok: $CASE: status, events, restart 0; rollback, reload 1 ($LAST)"
}

CASE="a policy that does not compile"
echo "this is not lua" >> "$T/policy.lua"
all_commands "policy.lua:2:"

CASE="a service file with an unknown key"
printf 'return { colour = "red", %s' "$(echo "$good" | sed '1d')" > "$T/service.lua"
all_commands "key 'colour': unknown key"

CASE="a service file that does not compile"
echo "$good" | sed 's/^  command = /  command = = /' > "$T/service.lua"
all_commands "service.lua:5:"

stop_load
assert_no_load_errors 100
client 0 stop
wait "$BPID" || fail "supervisor exited non-zero after stop"
BPID=""
echo "ok: stop -f with a broken service file, $LOAD"
