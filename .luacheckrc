-- luacheck (Debian: lua-check) for baton's Lua: `luacheck .` from the
-- repository root, or scripts/lint.sh, which runs it with the C checks.
-- The code runs under LuaJIT (the supervisor embeds it, the specs run under
-- `luajit /usr/bin/busted`), so the globals are LuaJIT's: Lua 5.1's, bit
-- and jit.
std = "luajit"

-- Lines: the code keeps to about 100 columns; a test name or an error message
-- may run longer, up to this.
max_line_length = 120

-- Modules return a table (`local _M = {}` ... `return _M`): no globals at all,
-- defined or read, outside the specs below. An unused variable, argument or
-- value is reported: name it `_` (or `_name`) when it is unused on purpose.
allow_defined = false
allow_defined_top = false
unused = true
unused_args = true
redefined = true

include_files = {
  "lua/**/*.lua",
  "policies/**/*.lua",
  "tests/lua/**/*.lua",
  "tests/apps/**/*.lua",
  "bench/**/*.lua",
  "examples/**/*.lua",
}
exclude_files = {
  "build*/**",
  "bench/out/**",
}

-- busted's globals (describe, it, assert.equal, spy, ...), for the specs only.
files["tests/lua/**/*_spec.lua"] = { std = "+busted" }
