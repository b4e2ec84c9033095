-- baton.patterns: Lua patterns in budgeted code, bounded.
--
-- A pattern match runs in C, where the policy budget cannot stop it, and a
-- pattern with several repetitions of "." backtracks in time that grows as
-- the string's length to the power of their number: ("a"):rep(3000):find
-- (".-.-.-.-b") would hold the event loop for hours. While a policy runs,
-- string.find, match, gmatch and gsub refuse such a pattern on a string
-- whose worst case is over LIMIT steps, with a message that says so. Code
-- that is not budgeted (the runtime's own) is not checked. The C core
-- installs this over the string library once (src/lua/bridge.c); every string
-- method goes through it.

local _M = {}

local LIMIT = 1e8

-- How many repetitions (*, +, -) of "." the pattern holds.
local function dot_repetitions(p)
  local n, i, len = 0, 1, #p
  while i <= len do
    local c = p:byte(i)
    if c == 37 then -- %x: an escape or a class, never "."
      i = i + 2
    elseif c == 91 then -- [set]: skip it
      local j = i + 1
      if p:byte(j) == 94 then j = j + 1 end
      if p:byte(j) == 93 then j = j + 1 end
      while j <= len and p:byte(j) ~= 93 do
        if p:byte(j) == 37 then j = j + 1 end
        j = j + 1
      end
      i = j + 1
    else
      if c == 46 then -- "."
        local q = p:byte(i + 1)
        if q == 42 or q == 43 or q == 45 then n = n + 1 end
      end
      i = i + 1
    end
  end
  return n
end
_M.dot_repetitions = dot_repetitions

function _M.install(string_lib, active)
  local find, match, gmatch, gsub = string_lib.find, string_lib.match, string_lib.gmatch, string_lib.gsub
  local function check(name, s, p, plain)
    if plain or type(s) ~= "string" or type(p) ~= "string" or not active() then return end
    local k = dot_repetitions(p)
    if k >= 2 and (#s) ^ k > LIMIT then
      error(("string.%s: the pattern repeats '.' %d times on %d bytes, which may take too long " ..
        "for a policy (the budget cannot stop a match): use a simpler pattern or a shorter string")
        :format(name, k, #s), 3)
    end
  end
  string_lib.find = function(s, p, init, plain)
    check("find", s, p, plain)
    return find(s, p, init, plain)
  end
  string_lib.match = function(s, p, init)
    check("match", s, p)
    return match(s, p, init)
  end
  string_lib.gmatch = function(s, p)
    check("gmatch", s, p)
    return gmatch(s, p)
  end
  string_lib.gsub = function(s, p, repl, n)
    check("gsub", s, p)
    return gsub(s, p, repl, n)
  end
end

return _M
