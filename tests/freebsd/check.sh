#!/usr/bin/env bash
# The FreeBSD syntax check checks what it says (scripts/check_freebsd.sh):
# that it compiles for FreeBSD and not for the host (a Linux-only call fails
# it, a FreeBSD-only one passes), that a function FreeBSD's files lack fails
# it, and that every portable file of the tree passes. Skipped (77) where there is no FreeBSD sysroot.
set -uo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
check=$repo/scripts/check_freebsd.sh
sysroot=${BATON_FREEBSD_SYSROOT:-$repo/../shared/sysroots/freebsd-12.1-include.tar.xz}
[ -e "$sysroot" ] || { echo "SKIP: no FreeBSD sysroot at $sysroot"; exit 77; }
command -v clang > /dev/null || { echo "SKIP: no clang (scripts/deps.sh fuzz)"; exit 77; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/baton-freebsd-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# Linux's: prctl and memfd_create, which FreeBSD 12.1 does not have.
cat > "$tmp/linux_only.c" <<'C'
#include <sys/mman.h>
#include <sys/prctl.h>
int f(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1) + memfd_create("x", 0); }
C
# FreeBSD's: procctl and a kinfo_proc field, which glibc does not have.
cat > "$tmp/freebsd_only.c" <<'C'
#include <sys/types.h>
#include <sys/procctl.h>
#include <sys/sysctl.h>
#include <sys/user.h>
#include <unistd.h>
int f(struct kinfo_proc *kp) { return procctl(P_PID, getpid(), PROC_REAP_ACQUIRE, 0) + kp->ki_sid; }
C

out=$("$check" "$tmp/linux_only.c" 2>&1) && fail "a Linux-only file passed: $out"
grep -q '1 with errors' <<< "$out" || fail "a Linux-only file: no error counted: $out"
echo "ok: a Linux-only file fails ($(tail -1 <<< "$out"))"

out=$("$check" "$tmp/freebsd_only.c" 2>&1) || fail "a FreeBSD-only file failed: $out"
echo "ok: a FreeBSD-only file passes"

# A function the portable code calls that FreeBSD's files lack compiles,
# and is caught as the link would catch it: a copy of the tree where
# freebsd.c's os_set_name has another name.
mkdir -p "$tmp/tree"
cp -r "$repo/scripts" "$repo/src" "$repo/include" "$repo/CMakeLists.txt" "$tmp/tree/" || exit 1
sed -i 's/^int os_set_name(/int os_set_name_elsewhere(/' "$tmp/tree/src/os/freebsd.c"
grep -q '^int os_set_name_elsewhere(' "$tmp/tree/src/os/freebsd.c" || fail "freebsd.c has no os_set_name"
out=$(BATON_FREEBSD_SYSROOT=$(readlink -f "$sysroot") "$tmp/tree/scripts/check_freebsd.sh" 2>&1) &&
    fail "a missing os_set_name passed: $(tail -2 <<< "$out")"
grep -q 'defined nowhere for FreeBSD: os_set_name$' <<< "$out" ||
    fail "a missing os_set_name: not named: $(tail -2 <<< "$out")"
echo "ok: a function FreeBSD's files lack fails it"

out=$("$check" 2>&1) || fail "the tree: $(grep -v '^OK' <<< "$out")"
grep -q ' 0 error(s)' <<< "$out" || fail "the tree: $out"
echo "ok: the tree: $(tail -1 <<< "$out")"
