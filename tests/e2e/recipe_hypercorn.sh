#!/usr/bin/env bash
# The hypercorn recipe (docs/recipes.md): hypercorn takes baton's listener
# as `--bind fd://3`; the ASGI app says READY=1 from its lifespan startup
# (tests/apps/asgi_hello.py); hypercorn drains on TERM. 10 restarts under
# load: no connect error, each drain ended by hypercorn's exit. Skipped
# without Debian's python3-hypercorn.
. "$(dirname "$0")/lib.sh"
/usr/bin/python3 -c 'import hypercorn' 2> /dev/null || { echo "skip: python3-hypercorn is not installed"; exit 77; }
: "${SOURCE_DIR:?}"

cat > "$T/service.lua" <<LUA
return {
  name = "hypercorn",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "/usr/bin/python3", "-m", "hypercorn", "--bind", "fd://3", "asgi_hello:app" },
  cwd = "$SOURCE_DIR/tests/apps",
  ready_timeout = 10,
  drain_timeout = 10,
  policy = "graceful",
}
LUA
start_baton
recipe_restarts no-deadline
if grep -q "does it drain on" "$T/sup.log"; then fail "a drain was flagged: $(grep -m1 'does it drain' "$T/sup.log")"; fi
echo "ok: 10 restarts of hypercorn under load, connect_errors=0, no drain at its deadline; $LOAD"
stop_baton
