#!/usr/bin/env bash
# The one command behind the comparison in bench/README.md: installs what
# is missing (nginx, HAProxy, gnuplot), runs bench/peers.sh and
# bench/scale.sh, and writes their tables, with the machine they ran on,
# into bench/README.md between the "begin: peers" and "end: peers" marks.
# The plots land in bench/results/ and the README shows them from there.
#
#   bench/compare.sh [RESTARTS]     (default 100 per way and load; ~25 min)
#   bench/compare.sh --write-only [RESTARTS]   (the README from results/ as they are)
set -euo pipefail
cd "$(dirname "$0")/.."
run=1
if [ "${1:-}" = --write-only ]; then run=0; shift; fi
RESTARTS=${1:-100}
if [ "$run" = 1 ]; then
    scripts/deps.sh bench
    bench/peers.sh "$RESTARTS"
    bench/scale.sh
fi

OUT=bench/results
block=$(mktemp /tmp/baton-compare.XXXXXX)
trap 'rm -f "$block" "$block.readme"' EXIT
{
    echo "<!-- begin: peers (written by bench/compare.sh; edits here are overwritten) -->"
    echo ""
    echo "Measured $(date -u +%Y-%m-%d) with \`bench/compare.sh $RESTARTS\` at baton $(git rev-parse --short HEAD) on"
    echo "$(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r),"
    echo "$(nproc) × $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1),"
    echo "$(free -g | awk '/^Mem:/ { print $2 }') GiB; $(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //'),"
    echo "$(/usr/sbin/haproxy -v | head -1 | awk '{ print "HAProxy " $3 }'). Load and servers share the machine's cores."
    echo ""
    echo "### $RESTARTS restarts per way and load"
    echo ""
    cat "$OUT/peers.md"
    echo ""
    echo "![failures per 1000 restarts](results/peers-errors.png)"
    echo ""
    echo "![timeline, a new connection per request](results/peers-timeline-close.png)"
    echo ""
    echo "![timeline, keep-alive connections](results/peers-timeline-keepalive.png)"
    echo ""
    echo "### Scale"
    echo ""
    sed 's/^## /#### /' "$OUT/scale.md"
    echo "<!-- end: peers -->"
} > "$block"

# Splice: everything outside the marks stays as it is.
awk -v block="$block" '
    /^<!-- begin: peers/ { while ((getline l < block) > 0) print l; skip = 1; next }
    /^<!-- end: peers -->/ { skip = 0; next }
    !skip { print }' bench/README.md > "$block.readme"
grep -q '^<!-- end: peers -->' "$block.readme" || { echo "compare: bench/README.md lacks the peers marks" >&2; exit 1; }
mv "$block.readme" bench/README.md
echo "bench/README.md updated; plots in $OUT/"
