#!/usr/bin/env bash
# Installs what baton needs to build, test and run its demo, from Debian's
# packages. Safe to run again: it installs only what is missing.
set -euo pipefail

# go-md2man turns docs/cli.md and docs/service-file.md into man pages.
build_pkgs=(pkg-config cmake gcc make libuv1-dev libluajit-5.1-dev luajit
            libjansson-dev libhttp-parser-dev lua-cjson go-md2man)
test_pkgs=(lua-busted libcmocka-dev gunicorn python3 curl procps iproute2 util-linux prometheus
           systemd python3-kubernetes python3-yaml man-db podman runc nodejs
           golang-go golang-golang-x-net-dev golang-github-coreos-go-systemd-dev
           golang-google-grpc-dev python3-grpcio python3-websockets python3-uvicorn python3-h11
           libseccomp-dev nginx-light lighttpd uwsgi-core uwsgi-plugin-python3
           python3-hypercorn python3-twisted)
# The peers the benchmarks compare with, and the plotting tool.
bench_pkgs=(nginx-light haproxy gnuplot-nox curl procps iproute2 python3)
# The formatter, linter and static analyser scripts/lint.sh runs.
lint_pkgs=(clang-format lua-check cppcheck python3)
# libFuzzer: clang and its runtime (scripts/fuzz.sh).
fuzz_pkgs=(clang libclang-rt-14-dev)

want=("${build_pkgs[@]}")
case "${1:-build}" in
    test) want+=("${test_pkgs[@]}") ;;
    bench) want+=("${bench_pkgs[@]}") ;;
    lint) want+=("${lint_pkgs[@]}") ;;
    fuzz) want+=("${fuzz_pkgs[@]}") ;;
    build) ;;
    *) echo "usage: $0 [build|test|bench|lint|fuzz]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# nginx's and haproxy's packages start their services on install where
# they can (port 80): the benchmarks run their own instances, so keep the
# packaged ones from starting, through the standard policy-rc.d hook.
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$guard" > /dev/null
    $SUDO chmod +x "$guard"
fi
rc=0
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || rc=$?
[ -z "$guard" ] || $SUDO rm -f "$guard"
exit $rc
