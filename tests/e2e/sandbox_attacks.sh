#!/usr/bin/env bash
# A policy that attacks its sandbox rather than its budget: it requires what
# it must not (a module planted in the working directory, the FFI binding,
# the runtime's own modules), poisons the string library and reaches for the
# string metatable, raises and returns values whose metamethods never end,
# looks for escape hatches, builds a gigabyte string, tampers with the
# objects the runtime hands it, passes drain options that loop, and poisons
# the built-in modules it shares. One attack per `baton restart` (a counter
# in the policy picks it); each is rolled back with its reason, the serving
# generation serves on, and the supervisor answers `baton status` all the
# while as fast as while it idles (the slowest answer under RATIO times the
# slowest of an idle window taken first, under the same load, or under
# FLOOR_MS: a loop held for good, or for a few 200 ms slices, fails it on
# an idle or a loaded machine alike). Then two policies that attack at
# load time are refused by `baton reload` while the running policy stays,
# the built-in default is shown unpoisoned (a restart under it, and a crash
# recovery after a SIGKILL), and the load client saw no failed request (the
# SIGKILL gets a load of its own: the requests inside the killed process
# may fail, none may be refused).
#
# SANDBOX_ATTACKS="name ..." runs only those attacks (to look at one alone);
# the load-time attacks and the final checks always run.
. "$(dirname "$0")/lib.sh"

CLI_TIMEOUT=20 # no baton command may hang the test
ALL_ATTACKS="x_module app core internals format string_mt error_tostring reason_table
             reason_loops hatches huge_string gc tamper drain_opts sort_loop gsub_loop
             tostring_loop backtrack watch_missing json_size fallthrough poison"
ATTACKS=$(echo ${SANDBOX_ATTACKS-$ALL_ATTACKS})
for a in $ATTACKS; do
    case " $(echo $ALL_ATTACKS) " in *" $a "*) ;; *) fail "unknown attack '$a' (known: $(echo $ALL_ATTACKS))" ;; esac
done

# The supervisor runs in $T: require's "./?.lua" would find ./baton/x.lua
# there, a module that writes a file if it ever runs.
cd "$T"
mkdir -p "$T/baton"
cat > "$T/baton/x.lua" <<LUA
local f = io.open("$T/pwned", "w")
f:write("a policy ran unsandboxed code\n")
f:close()
return {}
LUA

order=""
for a in $ATTACKS; do order="$order\"$a\", "; done
cat > "$T/policy.lua" <<LUA
local default = require("baton.policies.default")
local default_restart = default.restart
local function forever() while true do end end
local order = { ${order}"sentinel" }
local calls = 0
local attacks = {}

function attacks.x_module()
  require("baton.x")
  return nil, "baton.x was loaded"
end
function attacks.app()
  require("baton.app")
  return nil, "baton.app was loaded"
end
function attacks.core()
  require("baton.core")
  return nil, "baton.core was loaded"
end
function attacks.internals()
  for _, name in ipairs({ "baton.core", "baton.runtime", "baton.config", "baton.testkit" }) do
    local ok = pcall(require, name)
    if ok then error("escaped: " .. name) end
  end
  return nil, "all refused"
end
-- The policy's string library poisoned, then the runtime put to work: it
-- must format with its own. (A read-only string table will do too: pcall.)
function attacks.format(svc)
  pcall(function()
    string.format = forever
    for _, k in ipairs({ "rep", "sub", "gsub", "match", "gmatch", "find", "byte", "char",
                         "lower", "upper", "len", "reverse" }) do
      string[k] = string.format
    end
  end)
  local new = svc:spawn()
  if new then new:wait_ready(5) end
  return nil, "format replaced"
end
function attacks.string_mt()
  local mt = getmetatable("")
  if type(mt) == "table" then
    mt.__index.format = forever
    return nil, "reached the string metatable"
  end
  return nil, "no string metatable"
end
function attacks.error_tostring()
  error(setmetatable({}, { __tostring = forever }))
end
function attacks.reason_table()
  return nil, {}
end
function attacks.reason_loops()
  return nil, setmetatable({}, { __tostring = forever, __concat = forever })
end
function attacks.hatches()
  local present = {
    ["string.dump"] = string.dump, coroutine = coroutine, newproxy = newproxy, debug = debug,
    load = load, loadstring = loadstring, loadfile = loadfile, dofile = dofile,
    setfenv = setfenv, getfenv = getfenv, collectgarbage = collectgarbage, module = module,
    jit = jit, io = io, package = package, ["os.execute"] = os and os.execute or nil,
  }
  local names = {}
  for k in pairs(present) do names[#names + 1] = k end
  if #names > 0 then
    table.sort(names)
    error("escape hatch present: " .. table.concat(names, ", "))
  end
  return nil, "no hatches"
end
function attacks.huge_string()
  local s = ("x"):rep(2^30)
  return nil, "built a string of " .. #s .. " bytes"
end
function attacks.gc()
  setmetatable({}, { __gc = forever })
  collectgarbage = nil
  return nil, "gc set"
end
function attacks.tamper(svc, old)
  local trap = setmetatable({}, { __index = forever })
  pcall(function() svc.active = trap end)
  pcall(rawset, svc, "active", trap)
  if old then
    pcall(function() old.alive = forever end)
    pcall(rawset, old, "alive", forever)
    pcall(setmetatable, old, { __index = forever })
  end
  return nil, "tampered"
end
-- Drain options read before the promotion: the old generation must not be
-- left half-drained when the hook is stopped.
function attacks.drain_opts(svc, old)
  local new = svc:spawn()
  new:wait_ready(5)
  old:drain(setmetatable({}, { __index = forever }))
  svc:promote(new)
  return new
end
function attacks.fallthrough(svc, old)
  return default_restart(svc, old)
end
-- Loops inside C functions that call back into Lua, where the hook cannot
-- yield: each stop is an error the policy's own pcall must not swallow.
function attacks.sort_loop()
  table.sort({ 3, 1, 2 }, function() while true do pcall(forever) end end)
  return nil, "sort returned"
end
function attacks.gsub_loop()
  ("abc"):gsub(".", function() while true do pcall(forever) end end)
  return nil, "gsub returned"
end
function attacks.tostring_loop()
  local t = setmetatable({}, { __tostring = function() while true do pcall(forever) end end })
  return nil, tostring(t) .. string.format("%s", t)
end
-- A pattern that backtracks for hours, in C where no budget reaches.
function attacks.backtrack()
  local ok, err = pcall(function() return ("a"):rep(3000):find(".-.-.-.-b") end)
  if ok then return nil, "backtracked and returned" end
  return nil, "backtrack: " .. tostring(err)
end
-- A watch of a folder that does not exist (its handles used to be freed
-- while libuv still closed them).
function attacks.watch_missing(svc)
  local ok, err = svc:watch("/nonexistent-baton-dir/file", function() end)
  if ok then return nil, "watched a missing folder" end
  return nil, "watch refused: " .. tostring(err)
end
-- lua-cjson allocates outside the VM's cap: 100 references to 8 MB.
function attacks.json_size()
  local json = require("baton.state").json()
  local big, t = ("x"):rep(8 * 1024 * 1024), {}
  for i = 1, 100 do t[i] = big end
  local ok, err = pcall(json.encode, t)
  if ok then return nil, "encoded 800 MB" end
  return nil, "json: " .. tostring(err)
end
function attacks.poison()
  local function poisoner(what)
    return function() error("poisoned " .. what) end
  end
  for _, name in ipairs({ "baton.policies.default", "baton.steps" }) do
    local m = require(name)
    local keys = {}
    for k, v in pairs(m) do if type(v) == "function" then keys[#keys + 1] = k end end
    if name == "baton.policies.default" then keys[#keys + 1] = "restart" end
    if name == "baton.steps" then keys[#keys + 1] = "ready_new" end
    for _, k in ipairs(keys) do pcall(function() m[k] = poisoner(name .. "." .. k) end) end
  end
  return nil, "poisoned"
end
function attacks.sentinel()
  return nil, "sentinel after " .. (calls - 1) .. " calls"
end

local p = { start = default.start }
function p.restart(svc, old)
  calls = calls + 1
  local a = order[calls]
  if a == nil then return default_restart(svc, old) end
  return attacks[a](svc, old)
end
return p
LUA

printf 'while true do end\n' > "$T/loops.lua"
cat > "$T/needs_core.lua" <<'LUA'
local core = require("baton.core")
return { restart = function() return nil, tostring(core) end }
LUA

# service POLICY: the service file, swapped in whole (it is watched).
service() {
    cat > "$T/service.lua.new" <<LUA
return {
  name = "sandbox-attacks-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$HELLO" },
  ready_timeout = 5,
  drain_timeout = 10,
  policy = $1,
  policy_limits = { instructions = 1000000, slice_ms = 200, memory_mb = 64, timeout = 3 },
}
LUA
    mv "$T/service.lua.new" "$T/service.lua"
}
FLOOR_MS=${FLOOR_MS:-400} RATIO=${RATIO:-5}
service '"policy.lua"'
start_baton
start_load
serving=$(active_generation)
poller_baseline 2
echo "ok: idle baseline: slowest of $BASE_POLLS status answers: $BASE_WORST ms"

active_pid() { status_field 'generations[state=active].pid'; }


# expect WHAT RC PATTERN: a `baton restart` (which runs the policy's next
# attack) exits RC with PATTERN in its output; on a rollback the serving
# generation is unchanged, on success a new one serves.
expect() {
    local what=$1 want=$2 pattern=$3 out rc=0
    start_poller
    out=$(timeout "$CLI_TIMEOUT" "$BATON" restart -s "$SOCK" 2>&1) || rc=$?
    stop_poller_vs "$what" "$FLOOR_MS" "$RATIO"
    kill -0 "$BPID" 2>/dev/null || fail "$what: the supervisor died"
    [ ! -e "$T/pwned" ] || fail "$what: the planted module ran (restart said: $out)"
    [ $rc -eq "$want" ] || fail "$what: restart exited $rc (want $want): $out"
    echo "$out" | grep -q -- "$pattern" || fail "$what: want '$pattern' in: $out"
    [ "$want" -eq 0 ] || echo "$out" | grep -q "rolled back: " || fail "$what: not a rollback: $out"
    local now
    now=$(active_generation || true)
    if [ "$want" -eq 0 ]; then
        [ -n "$now" ] && [ "$now" != "$serving" ] || fail "$what: generation ${now:-none} serves, want a new one"
        serving=$now
    else
        [ "$now" = "$serving" ] || fail "$what: generation $serving stopped serving (now: '${now}')"
    fi
    echo "ok: $what -> $out (slowest of $POLLS status answers: ${WORST} ms, bound $BOUND ms)"
}

for a in $ATTACKS; do
    case $a in
    x_module)
        expect "$a" 1 "may require only" ;;
    app | core | internals)
        expect "$a" 1 "$([ $a = internals ] && echo "all refused" || echo "may require only")" ;;
    format)
        expect "$a" 1 "format replaced"
        "$BATON" stats -s "$SOCK" > /dev/null || fail "$a: baton stats failed afterwards" ;;
    string_mt) expect "$a" 1 "no string metatable" ;;
    error_tostring) expect "$a" 1 "error object of type table" ;;
    reason_table | reason_loops) expect "$a" 1 "reason is a table" ;;
    hatches) expect "$a" 1 "no hatches" ;;
    huge_string)
        expect "$a" 1 "memory cap"
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$BPID/status")
        [ "$hwm" -lt $((512 * 1024)) ] || fail "$a: the supervisor's peak memory is $((hwm / 1024)) MB"
        echo "ok: $a: the supervisor's peak memory is $((hwm / 1024)) MB" ;;
    gc) expect "$a" 1 "gc set" ;;
    tamper) expect "$a" 1 "tampered" ;;
    drain_opts)
        pid=$(active_pid || true)
        expect "$a" 1 "budget"
        kill -0 "$pid" 2>/dev/null || fail "$a: the serving generation's pid $pid is gone"
        [ "$(active_pid)" = "$pid" ] || fail "$a: pid $pid is no longer the active one" ;;
    sort_loop | gsub_loop | tostring_loop) expect "$a" 1 "exceeded its" ;;
    backtrack) expect "$a" 1 "may take too long for a policy" ;;
    watch_missing) expect "$a" 1 "watch refused" ;;
    json_size)
        expect "$a" 1 "would encode to more than"
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$BPID/status")
        [ "$hwm" -lt $((512 * 1024)) ] || fail "$a: the supervisor's peak memory is $((hwm / 1024)) MB" ;;
    fallthrough) expect "$a (a plain restart)" 0 "took over" ;;
    poison) expect "$a" 1 "poisoned" ;;
    esac
done
[ ! -e "$T/pwned" ] || fail "the planted module ran: $(cat "$T/pwned")"

# Load-time attacks: refused by `baton reload`, the running policy stays
# (the watcher may try the new file first: it is refused the same way).
reload_refused() { # reload_refused WHAT PATTERN
    local rc=0
    start_poller
    timeout 10 "$BATON" reload -s "$SOCK" > "$T/reload.out" 2> "$T/reload.err" || rc=$?
    stop_poller_vs "$1" 1000 "$RATIO"
    [ $rc -eq 1 ] || fail "$1: reload exited $rc: $(cat "$T/reload.out" "$T/reload.err")"
    grep -q -- "$2" "$T/reload.err" || fail "$1: want '$2' in reload's stderr: $(cat "$T/reload.err")"
    echo "ok: $1 -> $(cat "$T/reload.err") (slowest of $POLLS status answers: ${WORST} ms, bound $BOUND ms)"
}
reload_ok() {
    local out rc=0
    out=$(timeout 10 "$BATON" reload -s "$SOCK" 2>&1) || rc=$?
    [ $rc -eq 0 ] || fail "$1: reload exited $rc: $out"
    echo "ok: $1 -> $out"
}
service '"loops.lua"'
reload_refused "endless loop at load" "budget"
service '"needs_core.lua"'
reload_refused "require(\"baton.core\") at load" "may require only"
n=$(echo $ATTACKS | wc -w)
expect "the running policy stayed" 1 "sentinel after $n calls"
service '"policy.lua"'
reload_ok "the attack policy again"
[ ! -e "$T/pwned" ] || fail "the planted module ran: $(cat "$T/pwned")"

# The built-in default, after all that: a restart, then a crash recovery.
service '"default"'
reload_ok "policy = \"default\""
expect "a restart under the built-in default" 0 "took over"
stop_load
assert_no_load_errors 1000

# A SIGKILLed generation loses the requests inside it (crash_recovery.sh):
# a load of its own, which must see no refused connection.
start_load
pid=$(active_pid || true)
[ -n "$pid" ] || fail "no active generation to SIGKILL"
kill -9 "$pid"
new_active() { local g; g=$(active_generation); [ -n "$g" ] && [ "$g" != "$serving" ]; }
wait_for 15 new_active || fail "no new generation within 15 s after SIGKILL of pid $pid"
echo "ok: generation $serving (pid $pid) SIGKILLed, generation $(active_generation) serves"
sleep 0.5
LOAD1=$LOAD
stop_load
[ "$(load_field connect_errors)" = 0 ] || fail "clients were refused after the SIGKILL: $LOAD"
[ "$(load_field timeouts)" = 0 ] || fail "requests timed out after the SIGKILL: $LOAD"
lost=$(($(load_field resets) + $(load_field eof)))
[ "$lost" -le 16 ] || fail "more failures ($lost) than requests in flight at a SIGKILL: $LOAD"
stop_baton
echo "ok: sandbox held against every attack, $LOAD1"
