#!/usr/bin/env bash
# A change of a watched file starts a restart by itself: a config file
# edited in place, and the app's binary replaced by a rename, as a deploy
# does. Under load, with no failed request.
. "$(dirname "$0")/lib.sh"

cp "$HELLO" "$T/app"
echo "v1" > "$T/app.conf"
cat > "$T/service.lua" <<LUA
return {
  name = "triggers-e2e",
  control = "$SOCK",
  listen = { http = "tcp://127.0.0.1:0" },
  command = { "$T/app" },
  policy = { "default", watch = { "app.conf", "app" } },
}
LUA
start_baton
start_load

echo "v2" >> "$T/app.conf"
wait_for 5 active_is 2 || fail "editing app.conf did not restart"
grep -q "restart requested (.*app.conf changed)" "$T/sup.log" || fail "no trigger logged"
echo "ok: config edit -> generation 2"

cp "$HELLO" "$T/app.new" && mv "$T/app.new" "$T/app"
wait_for 5 active_is 3 || fail "replacing the binary did not restart"
echo "ok: binary replaced -> generation 3"

stop_load
assert_no_load_errors 500
stop_baton
echo "ok: file-change triggers, $LOAD"
