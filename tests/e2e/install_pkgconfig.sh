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
