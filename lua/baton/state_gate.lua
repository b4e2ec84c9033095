-- baton.state_gate: which state blob a new generation may receive.
--
-- The C core checked the stored blob when it arrived (seals, header,
-- checksum, size) and keeps the verdict; this gate decides what a spawn
-- passes: the stored blob as it is, a migrated copy ("staged"), or none.
-- A blob that is bad, or of another schema than the service expects and
-- not migrated, never reaches a generation while one serves: the spawn is
-- refused and the restart rolls back. Methods of the runtime object.

local sandbox = require("baton.sandbox")

local text = sandbox.text

local G = {}

-- Seconds a spawn waits for a stored blob's checksum (1 GiB: a quarter
-- of a second) before it is refused as unchecked.
local CHECK_WAIT = 60

function G:state_name()
  return self.cfg.state and self.cfg.state.name or "state"
end

-- Which state blob the next generation gets: "stored" (as it is, or none
-- is stored), "staged" (migrated), "none" (refused, but nothing serves:
-- a generation without its state beats no generation); or nil and why the
-- spawn must not happen (refused while a generation serves).
function G:state_for_spawn()
  local core = self.core
  local info, err, pending = core.state_info()
  -- A blob whose checksum is still being verified (off the event loop):
  -- wait for its verdict, which comes with the event "stored".
  local waited = 0
  while pending and waited < CHECK_WAIT do
    local t0 = self:now()
    self:wait("state-checked", CHECK_WAIT - waited)
    waited = waited + math.max(self:now() - t0, 0.001)
    info, err, pending = core.state_info()
  end
  if info == nil then return "stored" end
  local want = self.cfg.state and self.cfg.state.version
  local problem
  if info == false then
    problem = err
  elseif want == nil or info.version == want then
    return "stored"
  else
    problem = self:migrate(info, want)
    if not problem then return "staged" end
  end
  problem = "state refused: " .. problem
  self:count("baton.state_refused")
  if self.active and self.active:alive() then return nil, problem end
  core.log("error", problem .. "; nothing serves, so the new generation starts without it")
  return "none"
end

-- Runs the policy's migrate(svc, blob, from, to) hook (built-ins have one
-- when they take a `migrate` option) on the stored blob and stages what it
-- returns. Returns nil, or why the blob cannot be used.
function G:migrate(info, want)
  local hook = self:hook("migrate")
  if type(hook) ~= "function" then
    return ("the blob has schema %d, the service expects %d (state.version), and the policy " ..
      "has no migrate hook"):format(info.version, want)
  end
  -- A migration in Lua holds the blob in the VM, whose memory is capped:
  -- a larger one is refused before it is read.
  local cap = self.limits.memory_mb * 2^20
  if info.size > cap / 2 then
    return ("the blob holds %d bytes, too many to migrate in Lua (policy_limits.memory_mb %g " ..
      "allows %d)"):format(info.size, self.limits.memory_mb, cap / 2)
  end
  local blob, rerr = self.core.state_read()
  if not blob then return rerr end
  -- The hook runs here, in the coroutine (and the budget) of the hook that
  -- called svc:spawn: never a budgeted resume inside another.
  local me = coroutine.running()
  self.migrating = me
  local ok, out, why = xpcall(hook, debug.traceback, self.svc, blob, info.version, want)
  if self.migrating == me then self.migrating = nil end
  blob = nil -- luacheck: ignore (let the collector have it)
  if not ok then
    self.policy_errors = self.policy_errors + 1
    self:count("baton.policy_errors")
    self.core.log("error", "policy hook 'migrate': " .. text(out))
    return "the migrate hook failed: " .. text(out):match("^[^\n]*")
  end
  if out == nil or out == false then
    return ("migration from schema %d to %d refused: %s"):format(info.version, want,
      why == nil and "no reason given" or text(why))
  end
  if type(out) ~= "string" then
    return ("migrate must return the new blob (a string) or nil and why, not %s"):format(text(out))
  end
  local staged, serr = self.core.state_stage(out, want)
  if not staged then return serr end
  self.core.log("info", ("state migrated from schema %d to %d (%d bytes, now %d)")
    :format(info.version, want, info.size, #out))
  self:count("baton.state_migrations")
  return nil
end

return G
