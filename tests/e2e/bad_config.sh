#!/usr/bin/env bash
# Bad service files are refused with file, line and key; a listener address
# in use and a missing command are clear errors; nothing is left running.
. "$(dirname "$0")/lib.sh"

expect_refused() { # expect_refused WHAT PATTERN -- file content on stdin
    local what=$1 pattern=$2 out rc=0
    cat > "$T/bad.lua"
    out=$("$BATON" check "$T/bad.lua" 2>&1) || rc=$?
    [ $rc -eq 1 ] || fail "$what: check exited $rc: $out"
    echo "$out" | grep -qF "$pattern" || fail "$what: want '$pattern' in: $out"
    rc=0
    out=$(timeout 10 "$BATON" run "$T/bad.lua" 2>&1) || rc=$?
    [ $rc -eq 1 ] || fail "$what: run exited $rc: $out"
    echo "$out" | grep -qF "$pattern" || fail "$what: run: want '$pattern' in: $out"
    echo "ok: $what -> $(echo "$out" | grep -F "$pattern" | head -1)"
}

expect_refused "syntax error" "$T/bad.lua:3:" <<LUA
return {
  command = { "x" }
  name = "oops",
}
LUA
expect_refused "wrong key type" "$T/bad.lua:4: key 'drain_timeout': expected a number, got string" <<LUA
return {
  control = "$SOCK",
  command = { "$HELLO" },
  drain_timeout = "30s",
}
LUA
expect_refused "unknown key" "$T/bad.lua:3: key 'comand': unknown key" <<LUA
return {
  control = "$SOCK",
  comand = { "$HELLO" },
}
LUA
# Two typos: check and run name the same one, the first in the file, with
# the key it was meant to be.
expect_refused "typos" "$T/bad.lua:3: key 'comand': unknown key, did you mean 'command'?" <<LUA
return {
  control = "$SOCK",
  comand = { "$HELLO" },
  drain_timout = 3,
}
LUA
expect_refused "bad address" "key 'listen.web': listener 'web': 'localhost' is not a numeric" <<LUA
return {
  control = "$SOCK",
  listen = { web = "tcp://localhost:80" },
  command = { "$HELLO" },
}
LUA
expect_refused "unknown policy" "key 'policy': no built-in policy named 'fastest'" <<LUA
return { control = "$SOCK", command = { "$HELLO" }, policy = "fastest" }
LUA

expect_run_refused() { # like expect_refused, for what only binding can find
    local what=$1 pattern=$2 out rc=0
    cat > "$T/bad.lua"
    "$BATON" check "$T/bad.lua" > /dev/null || fail "$what: check should pass"
    out=$(timeout 10 "$BATON" run "$T/bad.lua" 2>&1) || rc=$?
    [ $rc -eq 1 ] || fail "$what: run exited $rc: $out"
    echo "$out" | grep -qF "$pattern" || fail "$what: run: want '$pattern' in: $out"
    echo "ok: $what -> $(echo "$out" | grep -F "$pattern" | head -1)"
}

# Address in use: held by someone else, the error names it, and its pid.
python3 -c 'import socket,time,sys
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)' > "$T/holder.port" &
HOLDER=$!
wait_for 5 test -s "$T/holder.port" || fail "port holder did not start"
busy=$(cat "$T/holder.port")
expect_run_refused "address in use" "listener 'http' (tcp://127.0.0.1:$busy): Address already in use: held by pid $HOLDER (python3)" <<LUA
return { control = "$SOCK", listen = { http = "tcp://127.0.0.1:$busy" }, command = { "$HELLO" } }
LUA
kill "$HOLDER"

# A command that does not exist: the first start fails clearly.
cat > "$T/missing.lua" <<LUA
return { control = "$SOCK", listen = { http = "tcp://127.0.0.1:0" }, command = { "baton-no-such-app" } }
LUA
out=$("$BATON" check "$T/missing.lua" 2>&1) || fail "check of a missing command exited non-zero: $out"
echo "$out" | grep -q "warning: command 'baton-no-such-app': not found in PATH: \`baton run\` would fail to start it" ||
    fail "check said nothing of the missing command: $out"
rc=0
out=$(timeout 10 "$BATON" run "$T/missing.lua" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "missing command: run exited $rc"
echo "$out" | grep -q "failed to start: command 'baton-no-such-app': not found in PATH" ||
    fail "missing command: $out"
echo "ok: missing command -> exit 1"

# An app that never says READY=1: the first start fails and says what to do.
echo hang > "$T/mode"
cat > "$T/silent.lua" <<LUA
return { control = "$SOCK", listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO", "--mode-file", "$T/mode" }, ready_timeout = 1 }
LUA
rc=0
out=$(timeout 10 "$BATON" run "$T/silent.lua" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "silent app: run exited $rc"
echo "$out" | grep -q "failed to start: generation 1 was not ready within 1s (no READY=1 came: for an app that does not send it, use ready = { notify = false, http = ... }" ||
    fail "silent app: $out"
rm -f "$T/mode"
echo "ok: an app that never says READY=1 -> the hint"

# A second supervisor on the same control socket is refused; the first is untouched.
hello_service
start_baton
rc=0
out=$(timeout 10 "$BATON" run "$T/service.lua" 2>&1) || rc=$?
[ $rc -eq 1 ] || fail "second supervisor exited $rc"
echo "$out" | grep -q "another supervisor is running there" || fail "second supervisor: $out"
has_active || fail "first supervisor lost its generation"
curl -sf "http://127.0.0.1:$PORT/" > /dev/null || fail "first supervisor stopped serving"
stop_baton
echo "ok: bad config"
