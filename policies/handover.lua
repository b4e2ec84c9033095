-- The handover policy: for apps that carry state from one generation to
-- the next (baton_state_save / baton_state_load, docs/state.md).
--
-- A restart:
--   1. asks the serving generation for its final state (SIGUSR1, option
--      `checkpoint`): the app stops taking writes, saves its state, and
--      waits (new connections queue on the shared listening socket);
--   2. starts the new generation, which receives that state, migrated by
--      the `migrate` option when the service file's state.version differs
--      from the blob's, loads it and says READY=1;
--   3. makes it the serving one and drains the old one.
-- If a step fails (no state in time, a refused or failed migration, a bad
-- blob, a new generation that is not ready), the restart rolls back: the
-- new generation drains and the old one is told to carry on (SIGUSR2,
-- option `resume`). Nothing the old generation acknowledged after its
-- final state exists, because it took no writes after it.
--
-- Options: checkpoint, resume (signal names), checkpoint_timeout
-- (seconds), migrate = function(svc, blob, from, to) -> new_blob | nil, why,
-- plus ready, watch and every as in the default policy.

local steps = require("baton.steps")

local policy = {
  name = "handover",
  defaults = {
    checkpoint = "USR1", resume = "USR2", checkpoint_timeout = 10, migrate = false,
    ready = false, watch = false, every = false, max_draining = false, signal = "TERM",
    max_memory = false, memory_interval = 60, start_limit = false,
  },
}

function policy.restart(svc, old)
  local o = svc.options
  if old then
    local ok, why = old:checkpoint{ signal = o.checkpoint, resume = o.resume,
      timeout = o.checkpoint_timeout }
    if not ok then return nil, why end
  end
  local new, err = steps.ready_new(svc)
  if not new then return nil, err end
  svc:promote(new)
  if old then
    steps.drain(svc, old, { signal = o.signal, deadline = svc.config.drain_timeout })
  end
  return new
end

return steps.standard(policy)
