#!/usr/bin/env bash
# libbaton installs with a pkg-config file, and an app compiles and links
# against the installed copy alone (static and shared), then counts.
. "$(dirname "$0")/lib.sh"
BUILD_DIR=$(dirname "$BATON")
cmake --install "$BUILD_DIR" --prefix "$T/prefix" > /dev/null || fail "install failed"
export PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig"
pkg-config --exists baton || fail "pkg-config does not know baton"
cat > "$T/app.c" <<'C'
#include <baton.h>
#include <stdio.h>
int main(void)
{
    struct baton_stats *st;
    baton_metric m;
    if (baton_stats_open(&st) != 1 || baton_counter(st, "app.hits", &m) != 0)
        return 1;
    baton_add(&m, 41);
    baton_metric_add(&m, 1);
    printf("%llu\n", (unsigned long long)*m.slot);
    baton_stats_close(st);
    return baton_listen_fds() == 0 ? 0 : 2;
}
C
# shellcheck disable=SC2046
# shellcheck disable=SC2086
cc -std=c11 -Wall -Werror ${APP_CFLAGS:-} -o "$T/app" "$T/app.c" $(pkg-config --cflags --libs baton) \
    -Wl,-rpath,"$T/prefix/lib" || fail "compile against the installed libbaton failed"
out=$("$T/app") || fail "app failed"
[ "$out" = 42 ] || fail "app printed $out"
# shellcheck disable=SC2086
cc -std=c11 ${APP_CFLAGS:-} -o "$T/app-static" "$T/app.c" $(pkg-config --cflags baton) "$T/prefix/lib/libbaton.a" ||
    fail "static link failed"
[ "$("$T/app-static")" = 42 ] || fail "static app wrong"
echo "ok: installed libbaton found by pkg-config, linked shared and static"

# The policy test kit, installed: a user's own repository, away from this
# source tree, tests its policy with busted against the installed copy
# (the runtime it drives, baton.steps, the built-in policies).
mkdir -p "$T/user/spec"
cat > "$T/user/my_policy.lua" <<'LUA'
local steps = require("baton.steps")
local p = { name = "mine" }
function p.restart(svc, old)
  local new, why = steps.ready_new(svc)
  if not new then return nil, why end
  svc:promote(new)
  if old then old:drain{ deadline = 5 } end
  return new
end
return steps.standard(p)
LUA
cat > "$T/user/spec/my_policy_spec.lua" <<'LUA'
local testkit = require("baton.testkit")
describe("my policy", function()
  it("takes over and drains the old generation at 5 s", function()
    local sim = testkit.started{ policy = "my_policy.lua", dir = "." }
    local r = sim:restart()
    sim:ready(2)
    assert.is_true(r.ok)
    sim:advance(5.1)
    assert.is_true(sim:signalled(1, "KILL"))
  end)
  it("a built-in policy comes from the installed copy too", function()
    local sim = testkit.started{ policy = "graceful" }
    assert.equal(1, sim:active())
  end)
end)
LUA
out=$(cd "$T/user" && luajit /usr/bin/busted --lpath="$T/prefix/share/lua/5.1/?.lua" spec 2>&1) ||
    fail "the user's policy spec failed against the installed kit: $out"
echo "$out" | grep -q "2 successes / 0 failures" || fail "unexpected busted output: $out"
echo "ok: a policy spec runs against the installed test kit"

# Bash completion, installed: it asks the installed baton (on PATH) what
# to offer.
words=$(PATH="$T/prefix/bin:$PATH" bash -c '. "$1"; COMP_WORDS=(baton re); COMP_CWORD=1; _baton
    echo "${COMPREPLY[@]}"' _ "$T/prefix/share/bash-completion/completions/baton")
[ "$words" = "restart reload" ] || fail "completion of 're' gave '$words'"
echo "ok: bash completion ($words)"

# The man pages, installed where man finds them.
for page in man1/baton.1 man5/baton-service.5; do
    [ -s "$T/prefix/share/man/$page" ] || fail "no installed man page $page"
done
MANPATH="$T/prefix/share/man" man -w baton-service | grep -q "man5/baton-service.5" ||
    fail "man does not find the installed baton-service(5)"
echo "ok: man pages baton(1) and baton-service(5) installed"
