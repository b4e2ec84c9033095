-- baton.state: helpers for migrate hooks.
--
-- A migrate hook, migrate(svc, blob, from, to), gets the stored blob (a string), the schema it was saved
-- with and the schema the service file expects (state.version), and returns
-- the new blob, or nil and why (the restart is then refused and the old
-- generation keeps serving). Most migrations are a chain of one-version
-- steps; these build the hook from the steps:
--
--   local state = require("baton.state")
--   policy.migrate = state.steps{
--     [1] = function(blob) return blob:gsub("\n", " 0\n") end,   -- 1 -> 2
--   }
--   policy.migrate = state.json_steps{
--     [1] = function(doc) doc.ttl = doc.ttl or 60; return doc end, -- 1 -> 2
--     [2] = function(doc) doc.names = nil; return doc end,          -- 2 -> 3
--   }
--
-- A step returns the next version's value, or nil and why. Going down
-- (to < from) needs steps of its own: pass { down = { [3] = fn } } for 3 -> 2.

local _M = {}

local function chain(up, down, decode, encode)
  return function(_, blob, from, to) -- (svc, blob, from, to): a migrate hook
    local value = blob
    if decode then
      local ok, v = pcall(decode, blob)
      if not ok then return nil, "cannot decode the stored blob: " .. (type(v) == "string" and v or "?") end
      value = v
    end
    local dir, steps = 1, up
    if to < from then dir, steps = -1, down or {} end
    for v = from, to - dir, dir do
      local step = steps[v]
      if not step then
        return nil, ("no migration step from schema %d to %d"):format(v, v + dir)
      end
      local nxt, why = step(value)
      if nxt == nil then
        return nil, ("step %d -> %d: %s"):format(v, v + dir, type(why) == "string" and why or "refused")
      end
      value = nxt
    end
    if encode then return encode(value) end
    return value
  end
end

-- STEPS[v] turns a version-v blob (a string) into a version v+1 blob.
function _M.steps(steps)
  return chain(steps, steps.down)
end

-- Each step gets and returns a decoded JSON document (lua-cjson).
function _M.json_steps(steps)
  local cjson = require("cjson.safe")
  local function decode(blob)
    local doc, err = cjson.decode(blob)
    if doc == nil then error(err, 0) end
    return doc
  end
  return chain(steps, steps.down, decode, cjson.encode)
end

-- JSON for hand-written hooks: decode(blob) -> value | nil, err; encode(value).
function _M.json()
  return require("cjson.safe")
end

return _M
