#!/usr/bin/env bash
# Syntax-checks baton's C for FreeBSD 12.1 against its system headers, so
# the portable core stays portable without a FreeBSD machine at hand.
#
# Which files: every .c under src/ except the Linux platform files, which
# are the files of src/os/ whose name starts with "linux" (linux.c,
# linux_conns.c, linux_sockdiag.c, ...): CMake builds those on Linux only
# and their FreeBSD counterparts (src/os/freebsd*.c) on FreeBSD only. The
# FreeBSD files are checked here; on Linux nothing else compiles them.
#
# How: clang --target=x86_64-unknown-freebsd12 --sysroot=SYSROOT
# -fsyntax-only -Wall -Wextra -Werror -std=c11 with the project's include
# dirs and defines (CMakeLists.txt). SYSROOT is FreeBSD 12.1's headers,
# $BATON_FREEBSD_SYSROOT or ../shared/sysroots/freebsd-12.1-include.tar.xz
# beside the repository (a .tar.xz, or a folder holding usr/include),
# unpacked once into a cache folder. libuv's, Jansson's, LuaJIT's and
# http-parser's headers are platform-neutral: Debian's are copied into
# the sysroot's usr/local/include (those headers alone: Debian's glibc
# headers never come on the path).
#
# Then, over the whole tree, that every function called is defined by one
# of its files or declared by a library (below): the link FreeBSD would do.
#
# Prints OK or the errors for each file and a total; exits 1 on any
# error, 0 when all pass, and 0 saying "skipped" when there is no sysroot.
#   scripts/check_freebsd.sh            every file
#   scripts/check_freebsd.sh FILE...    these files only
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 2

sysroot_src=${BATON_FREEBSD_SYSROOT:-$repo/../shared/sysroots/freebsd-12.1-include.tar.xz}
if [ ! -e "$sysroot_src" ]; then
    echo "check_freebsd: skipped: no FreeBSD sysroot at $sysroot_src" \
        "(set BATON_FREEBSD_SYSROOT to a .tar.xz of FreeBSD 12.1's usr/include, or a folder holding it)"
    exit 0
fi
command -v clang > /dev/null || scripts/deps.sh fuzz ||
    { echo "check_freebsd: clang is missing and could not be installed (scripts/deps.sh fuzz)" >&2; exit 2; }

# The headers taken from Debian; each must be there (libuv1-dev,
# libjansson-dev, libluajit-5.1-dev, libhttp-parser-dev: scripts/deps.sh).
neutral=(/usr/include/uv.h /usr/include/uv /usr/include/jansson.h /usr/include/jansson_config.h
         /usr/include/http_parser.h /usr/include/luajit-2.1)
for h in "${neutral[@]}"; do
    [ -e "$h" ] || { echo "check_freebsd: $h is missing (scripts/deps.sh build)" >&2; exit 2; }
done

# The cache: one folder per sysroot, named by its path and modification
# time, so a new tarball is unpacked again.
if [ -d "$sysroot_src" ]; then
    root=$(cd "$sysroot_src" && pwd)
else
    cache=${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/baton/freebsd-sysroot
    key=$(printf '%s %s' "$(readlink -f "$sysroot_src")" "$(stat -c %Y "$sysroot_src")" | cksum | cut -d' ' -f1)
    root=$cache/$key
    if [ ! -d "$root" ]; then
        # Unpacked beside it, then renamed into place: two checks at once
        # (ctest's and test.sh's) never see half a sysroot.
        mkdir -p "$cache" && part=$(mktemp -d "$cache/.unpack.XXXXXX") || exit 2
        tar -xJf "$sysroot_src" -C "$part" ||
            { echo "check_freebsd: cannot unpack $sysroot_src" >&2; rm -rf "$part"; exit 2; }
        mv -T "$part" "$root" 2> /dev/null || rm -rf "$part" # another run was first
    fi
fi
[ -f "$root/usr/include/sys/param.h" ] ||
    { echo "check_freebsd: $root holds no usr/include/sys/param.h: not a FreeBSD sysroot" >&2; exit 2; }

# The neutral headers, in a private folder beside the sysroot (not inside
# it, which may be read-only), refreshed on every run: cheap, and never
# stale after a Debian upgrade.
local_inc=$(mktemp -d "${TMPDIR:-/tmp}/baton-freebsd-inc.XXXXXX") || exit 2
trap 'rm -rf "$local_inc"' EXIT
cp -r "${neutral[@]}" "$local_inc/" || exit 2

version=$(sed -n 's/^project(baton VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
flags=(--target=x86_64-unknown-freebsd12 "--sysroot=$root" -fsyntax-only
       -Wall -Wextra -Werror -ferror-limit=0 -std=c11 -D_GNU_SOURCE "-DBATON_VERSION=\"$version\""
       -I src -I include -I src/libbaton
       -isystem "$local_inc" -isystem "$local_inc/luajit-2.1")

if [ $# -gt 0 ]; then
    files=("$@")
else
    mapfile -t files < <(find src -name '*.c' ! -path 'src/os/linux*' | LC_ALL=C sort)
fi

nfiles=0 nbad=0 nerr=0
for f in "${files[@]}"; do
    nfiles=$((nfiles + 1))
    if out=$(clang "${flags[@]}" "$f" 2>&1); then
        echo "OK     $f"
        continue
    fi
    n=$(grep -c 'error:' <<< "$out")
    nbad=$((nbad + 1))
    nerr=$((nerr + n))
    echo "ERRORS $f: $n"
    sed 's/^/    /' <<< "$out"
done

# Every function the tree calls is defined somewhere on FreeBSD: a new
# os.h or conns.h function Linux got and FreeBSD did not compiles, and
# would fail only at link time there. So, over the whole tree, once it
# compiles: each file to an object, and every symbol the objects need
# that none defines must be declared by a system or library header (libc,
# libuv, Jansson, LuaJIT, http-parser). Two exceptions: lua_embedded, which
# CMake generates, and __cpu_model, the compiler runtime's (behind
# __builtin_cpu_supports).
missing=()
symbols="functions not checked (files named, or errors)"
if [ $# -eq 0 ] && [ $nerr -eq 0 ] && [ $nbad -eq 0 ]; then
    objs=$local_inc/.objs
    mkdir -p "$objs" || exit 2
    oflags=("${flags[@]/-fsyntax-only/-c}")
    i=0
    for f in "${files[@]}"; do
        i=$((i + 1))
        clang "${oflags[@]}" -O0 "$f" -o "$objs/$i.o" ||
            { echo "check_freebsd: $f compiles with -fsyntax-only but not to an object" >&2; exit 1; }
    done
    grep -rhoE '[A-Za-z_][A-Za-z0-9_]*' "$root/usr/include" "$local_inc" --include='*.h' |
        LC_ALL=C sort -u > "$objs/declared"
    nm --defined-only -g "$objs"/*.o | awk 'NF == 3 { print $3 }' | LC_ALL=C sort -u > "$objs/defined"
    mapfile -t missing < <(nm -u "$objs"/*.o | awk 'NF == 2 { print $2 }' | LC_ALL=C sort -u |
        LC_ALL=C comm -23 - "$objs/defined" | LC_ALL=C comm -23 - "$objs/declared" |
        grep -vxE 'lua_embedded|__cpu_model')
    if [ ${#missing[@]} -eq 0 ]; then
        echo "OK     every function called is defined by the tree or declared by a library"
    else
        echo "ERRORS called, and defined nowhere for FreeBSD: ${missing[*]}"
    fi
    symbols="${#missing[@]} undefined function(s)"
fi

echo "check_freebsd: $nfiles file(s), $nbad with errors, $nerr error(s), $symbols" \
    "(clang $(clang -dumpversion), FreeBSD $(sed -n 's/^#define __FreeBSD_version \([0-9]*\).*/\1/p' \
    "$root/usr/include/sys/param.h"))"
[ $nerr -eq 0 ] && [ $nbad -eq 0 ] && [ ${#missing[@]} -eq 0 ]
