-- A policy for the steering tests: the old generation keeps 90 beside
-- the new one at 10 (a split), both serving.
local steps = require("baton.steps")
return steps.standard({
  name = "split",
  restart = function(svc, old)
    local new, why = steps.ready_new(svc)
    if not new then return nil, why end
    if old then
      assert(new:weight(10))
      assert(old:weight(90))
    end
    svc:promote(new)
    return new
  end,
})
