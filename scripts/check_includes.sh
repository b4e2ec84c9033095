#!/usr/bin/env bash
# Checks two rules on src/ (recursively, `#include "..."` only): no file
# includes another that includes it back, directly or through a third; and
# each folder includes only the folders below it (LAYERS, below).
#
# A module is a file's path under src/ without its extension: foo.c and foo.h
# are one module, `foo`; src/libbaton/state.c is `libbaton/state`. Module A
# depends on B when a file of A includes a file of B. A cycle among modules
# fails the check (exit 1); each is printed as
#     cycle: loop/supervisor -> lua/bridge -> loop/supervisor
# followed by the #include lines that close it, which are what to mend.
#
#   scripts/check_includes.sh            check; prints only the cycles
#   scripts/check_includes.sh --graph    print the include graph first, one line
#                                        a file (`a.c -> b.h c.h`), then check
#
# Quoted includes resolve as the build resolves them: the including file's
# directory, then src/, include/ and src/libbaton/. Headers outside src/
# (include/baton.h) and generated ones are not part of the graph.
set -euo pipefail
cd "$(dirname "$0")/.."

graph=0
case "${1:-}" in
    --graph) graph=1 ;;
    "") ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--graph]" >&2; exit 2 ;;
esac

exec python3 - "$graph" <<'PY'
import os
import re
import sys

SRC = "src"
SEARCH = ["src", "include", "src/libbaton"]  # after the including file's dir
MAX_CYCLES = 50  # per group of modules that depend on each other
show_graph = sys.argv[1] == "1"

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')

files = []
for root, dirs, names in os.walk(SRC):
    dirs.sort()
    for n in sorted(names):
        if n.endswith((".c", ".h")):
            files.append(os.path.relpath(os.path.join(root, n), SRC))
files.sort()
known = set(files)


def resolve(includer, name):
    """The included file's path under src/, or None when it is outside src/."""
    for d in [os.path.join(SRC, os.path.dirname(includer))] + SEARCH:
        path = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(path):
            rel = os.path.relpath(path, SRC)
            return rel if rel in known else None
    return None


def module(f):
    return os.path.splitext(f)[0]


includes = {}  # file -> [(included file, line number)]
for f in files:
    out = []
    with open(os.path.join(SRC, f), encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            m = INCLUDE.match(line)
            if m:
                target = resolve(f, m.group(1))
                if target is not None and target != f:
                    out.append((target, lineno))
    includes[f] = out

if show_graph:
    for f in files:
        print(f"{f} -> {' '.join(t for t, _ in includes[f])}".rstrip())

# Module graph; each edge remembers the #include lines that make it.
edges = {}
for f in files:
    a = module(f)
    edges.setdefault(a, {})
    for t, lineno in includes[f]:
        b = module(t)
        if a != b:
            edges[a].setdefault(b, []).append(f"src/{f}:{lineno}: includes {t}")
nodes = sorted(edges)

# The layering rule: each folder of src/ includes only itself and the
# folders it is allowed below; the files at src/'s root (main.c, run.c) may
# include anything. Read it as "who may know whom":
LAYERS = {
    "libbaton": [],                       # what apps link: libc only
    "base": [],                           # log, clocks, paths: every side's
    "os": ["base"],                       # the platform seam
    "loop": ["base", "os", "libbaton"],   # the supervisor's loop
    "handoff": ["base", "os", "loop", "libbaton"],  # upgrade, keeper, takeover
    "lua": ["base", "os", "loop", "libbaton"],      # the runtime's C side
    "client": ["base", "os", "libbaton", "loop/control", "."],  # the CLI
}


def folder(m):
    return m.split("/", 1)[0] if "/" in m else "."


layering = []
for a in nodes:
    fa = folder(a)
    if fa == "." or fa not in LAYERS:
        continue
    for b, whys in sorted(edges[a].items()):
        fb = folder(b)
        if fb == fa or fb in LAYERS[fa] or b in LAYERS[fa]:
            continue
        layering.append(f"layering: {a} includes {b}: {fa}/ may include only "
                        f"{', '.join(LAYERS[fa]) or 'itself'}")
        layering.extend("    " + w for w in whys)
for line in layering:
    print(line)

# Strongly connected components (Tarjan, iterative).
index, low, on_stack, stack, sccs = {}, {}, set(), [], []
counter = 0
for root in nodes:
    if root in index:
        continue
    work = [(root, iter(sorted(edges[root])))]
    index[root] = low[root] = counter
    counter += 1
    stack.append(root)
    on_stack.add(root)
    while work:
        v, it = work[-1]
        advanced = False
        for w in it:
            if w not in index:
                index[w] = low[w] = counter
                counter += 1
                stack.append(w)
                on_stack.add(w)
                work.append((w, iter(sorted(edges[w]))))
                advanced = True
                break
            if w in on_stack:
                low[v] = min(low[v], index[w])
        if advanced:
            continue
        work.pop()
        if work:
            low[work[-1][0]] = min(low[work[-1][0]], low[v])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))


def cycles_in(comp):
    """Every elementary cycle of one component, each starting at its
    smallest module, in a stable order."""
    order = {n: i for i, n in enumerate(comp)}
    found = []
    for start in comp:
        path = [start]

        def dfs(v):
            for w in sorted(edges[v]):
                if w not in order or order[w] < order[start]:
                    continue
                if w == start:
                    found.append(path + [start])
                    if len(found) >= MAX_CYCLES:
                        return True
                elif w not in path:
                    path.append(w)
                    if dfs(w):
                        return True
                    path.pop()
            return False

        if dfs(start):
            return found, True
    return found, False


if not sccs:
    if show_graph:
        print("no include cycles among src/ modules")
    sys.exit(1 if layering else 0)

def rotate(c, hub):
    """The same cycle, told from HUB when it passes through it."""
    ring = c[:-1]
    if hub in ring:
        i = ring.index(hub)
        ring = ring[i:] + ring[:i]
    return ring + [ring[0]]


ncycles = 0
for comp in sccs:
    cycles, truncated = cycles_in(comp)
    # Tell every cycle of a group from the module most of them pass through
    # (the hub: `loop/supervisor -> lua/bridge -> loop/supervisor`).
    seen = {n: sum(n in c for c in cycles) for n in comp}
    hub = max(comp, key=lambda n: (seen[n], -comp.index(n)))
    cycles = sorted(rotate(c, hub) for c in cycles)
    for c in cycles:
        ncycles += 1
        print("cycle: " + " -> ".join(c))
        for a, b in zip(c, c[1:]):
            for why in edges[a][b]:
                print(f"    {why}")
    if truncated:
        print(f"    ... and more among: {' '.join(comp)}")
print(f"check_includes: {ncycles} include cycle(s) among src/ modules; "
      "break each by moving what one side needs into a header of its own "
      "(or a forward declaration) so that the dependency runs one way",
      file=sys.stderr)
sys.exit(1)
PY
