#!/usr/bin/env bash
# No cycles between files (docs/architecture.md): calls go one way, tools -> libinfer ->
# libformat -> kernels, and within a library from higher-level files to lower-level ones.
#   1. includes: the graph of `#include "..."` between the tracked sources (resolved like the
#      build's include paths) has no cycle;
#   2. calls: the graph "object A uses a symbol object B defines" over the built objects of
#      kernels, libformat, libinfer and the tools has no cycle.
# A cycle is printed with its edges (for calls, the symbols behind each edge).
set -euo pipefail
: "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}"
if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  echo "SKIP: no_cycles runs no apr tool (nothing for memcheck)" >&2
  exit 77
fi
command -v nm >/dev/null || { echo "no_cycles: FAIL: nm (binutils) is not installed" >&2; exit 1; }
exec python3 - "$ROSETTA_ROOT" "$ROSETTA_BUILD" <<'PY'
import glob, os, re, subprocess, sys

root, build = sys.argv[1:3]
failed = False


def cycles(graph):
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(graph.get(w, ()))))
                    advanced = True
                    break
                if w in on:
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
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


# ---- 1. includes -----------------------------------------------------------------------------
tracked = subprocess.run(["git", "-C", root, "ls-files", "*.c", "*.h"], capture_output=True,
                         text=True).stdout.split()
if not tracked:  # not a git checkout: walk the tree
    for top in ("libformat", "libinfer", "kernels", "tools", "bench", "tests"):
        for d, _, files in os.walk(os.path.join(root, top)):
            tracked += [os.path.relpath(os.path.join(d, f), root) for f in files
                        if f.endswith((".c", ".h"))]
search = ["libformat/include", "libformat/src", "kernels", "libinfer/include", "libinfer/src",
          "tools/common"]
files = set(tracked)
graph = {}
for f in tracked:
    edges = set()
    with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
        for line in fh:
            m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
            if not m:
                continue
            name = m.group(1)
            for base in [os.path.dirname(f)] + search:
                cand = os.path.normpath(os.path.join(base, name))
                if cand in files:
                    if cand != f:
                        edges.add(cand)
                    break
    graph[f] = edges
include_cycles = cycles(graph)
for comp in include_cycles:
    failed = True
    print("no_cycles: FAIL: include cycle between " + ", ".join(comp))
    for a in comp:
        print("    %s includes %s" % (a, ", ".join(sorted(b for b in graph[a] if b in comp))))
print("no_cycles: %d files, %d include edges, %d include cycles"
      % (len(graph), sum(len(e) for e in graph.values()), len(include_cycles)))

# ---- 2. calls between built objects ------------------------------------------------------------
objects = []
for sub in ("kernels", "libformat", "libinfer", "tools"):
    objects += glob.glob(os.path.join(build, sub, "CMakeFiles", "*.dir", "**", "*.o"),
                         recursive=True)
if not objects:
    print("no_cycles: FAIL: no object files under %s (build first)" % build)
    sys.exit(1)
defs, uses = {}, {}
for o in objects:
    name = os.path.relpath(o, build)
    d, u = set(), set()
    out = subprocess.run(["nm", o], capture_output=True, text=True).stdout
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in "TDRBCGSV":
            d.add(p[2])
        elif len(p) == 2 and p[0] == "U":
            u.add(p[1])
    defs[name], uses[name] = d, u
# an executable's objects may define the same helper names as another's; a symbol with several
# owners in different targets is resolved within the target of the user when it can be
owner = {}
for name, d in defs.items():
    for s in d:
        owner.setdefault(s, []).append(name)


def target_of(obj):
    return obj.split(os.sep + "CMakeFiles" + os.sep)[-1].split(os.sep)[0]


calls, why = {}, {}
for name, u in uses.items():
    calls[name] = set()
    for s in u:
        cands = owner.get(s, [])
        same = [c for c in cands if target_of(c) == target_of(name)]
        for c in (same or cands[:1]):
            if c != name:
                calls[name].add(c)
                why.setdefault((name, c), set()).add(s)
call_cycles = cycles(calls)
for comp in call_cycles:
    failed = True
    print("no_cycles: FAIL: call cycle between " + ", ".join(comp))
    for a in comp:
        for b in sorted(calls[a]):
            if b in comp:
                print("    %s -> %s (%s)" % (a, b, ", ".join(sorted(why[(a, b)])[:4])))
print("no_cycles: %d objects, %d call edges, %d call cycles"
      % (len(calls), sum(len(e) for e in calls.values()), len(call_cycles)))
sys.exit(1 if failed else 0)
PY
