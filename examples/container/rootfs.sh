#!/usr/bin/env bash
# rootfs.sh DESTDIR BATON_BIN APP_BIN: a minimal root filesystem for the
# container example (Containerfile), from what Debian's packages installed
# on this machine: baton as /usr/bin/baton, the app as /usr/bin/hello_server,
# the shared libraries each links (the real files, at the paths the loader
# resolved, with the loader itself), /etc/passwd and /etc/group, /tmp,
# /run/baton and the service file as /etc/baton/service.lua.
# DESTDIR must be new or empty: nothing already there is overwritten.
# Needs ldd (libc-bin) and the libraries the binaries link: libuv1,
# libluajit-5.1-2, libjansson4, libhttp-parser2.9.
#
#   examples/container/rootfs.sh build/container/rootfs build/baton build/examples/hello_server
set -euo pipefail

usage() {
    echo "usage: $0 DESTDIR BATON_BIN APP_BIN" >&2
    exit 2
}
[ $# -eq 3 ] || usage
dest=$1 baton=$2 app=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

for b in "$baton" "$app"; do
    if [ ! -f "$b" ] || [ ! -x "$b" ]; then
        echo "rootfs: $b: not an executable file" >&2
        exit 1
    fi
done
if [ -e "$dest" ] || [ -L "$dest" ]; then
    if [ ! -d "$dest" ] || [ -L "$dest" ]; then
        echo "rootfs: $dest: exists and is not a folder" >&2
        exit 1
    fi
    [ -z "$(ls -A -- "$dest")" ] || { echo "rootfs: $dest: not empty" >&2; exit 1; }
fi
mkdir -p -- "$dest"
dest=$(cd -- "$dest" && pwd)

# libs BINARY: the absolute path of each shared object BINARY loads, the
# loader included (ldd prints it as a bare path); fails on a missing one.
libs() {
    local out
    out=$(LC_ALL=C ldd -- "$1" 2>&1) || {
        # A static binary needs nothing; anything else is an error.
        [ "$out" != "${out/not a dynamic executable/}" ] && return 0
        echo "rootfs: ldd $1 failed: $out" >&2
        return 1
    }
    if grep -q '=> not found' <<< "$out"; then
        echo "rootfs: $1: missing libraries:" >&2
        grep '=> not found' <<< "$out" >&2
        return 1
    fi
    awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }' <<< "$out"
}

# put SRC PATH [MODE]: copies SRC's content (a symlink followed) to PATH in
# the root filesystem, with MODE (default: SRC's).
put() {
    install -D -m "${3:-$(stat -L -c %a -- "$1")}" -- "$1" "$dest$2"
}

put "$baton" /usr/bin/baton 0755
put "$app" /usr/bin/hello_server 0755
baton_libs=$(libs "$baton")
app_libs=$(libs "$app")
while IFS= read -r lib; do
    [ -z "$lib" ] || put "$lib" "$lib"
done < <(printf '%s\n%s\n' "$baton_libs" "$app_libs" | sort -u)
put "$here/service.lua" /etc/baton/service.lua 0644

install -d -m 0755 "$dest/etc" "$dest/proc" "$dest/sys" "$dest/dev" "$dest/run"
install -d -m 1777 "$dest/tmp"
install -d -m 0700 "$dest/run/baton"
printf '%s\n' 'root:x:0:0:root:/root:/usr/sbin/nologin' \
    'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' > "$dest/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' > "$dest/etc/group"
chmod 0644 "$dest/etc/passwd" "$dest/etc/group"
echo "rootfs: $dest: $(find "$dest" -type f | wc -l) files, $(du -sh "$dest" | cut -f1)"
