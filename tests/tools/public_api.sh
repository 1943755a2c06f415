#!/usr/bin/env bash
# The public API is small and written down (docs/architecture.md):
#   1. `nm -D --defined-only` of librosetta-format.so lists exactly tests/data/public_symbols.txt;
#   2. that list is exactly the functions declared RF_API in libformat/include/rosetta/*.h (the
#      library is built with -fvisibility=hidden, so nothing else leaks);
#   3. every exported symbol is named in docs/architecture.md's API table;
#   4. no tool or benchmark includes a private header of libformat or libinfer, or a kernel header.
# After adding a public function: declare it RF_API, document it, and regenerate the list with
#   nm -D --defined-only build/libformat/librosetta-format.so | awk '{print $3}' | sort \
#     > tests/data/public_symbols.txt
set -euo pipefail
: "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}"
if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  echo "SKIP: public_api runs no apr tool (nothing for memcheck)" >&2
  exit 77
fi
command -v nm >/dev/null || { echo "public_api: FAIL: nm (binutils) is not installed" >&2; exit 1; }
so="$ROSETTA_BUILD/libformat/librosetta-format.so"
[ -f "$so" ] || { echo "public_api: FAIL: $so is not built" >&2; exit 1; }
exec python3 - "$ROSETTA_ROOT" "$so" <<'PY'
import glob, os, re, subprocess, sys

root, so = sys.argv[1:3]
failed = False


def fail(msg):
    global failed
    failed = True
    print("public_api: FAIL: " + msg)


out = subprocess.run(["nm", "-D", "--defined-only", so], capture_output=True, text=True,
                     check=True).stdout
exported = sorted({line.split()[-1] for line in out.splitlines() if line.split()})
listed = sorted(open(os.path.join(root, "tests/data/public_symbols.txt")).read().split())
if exported != listed:
    fail("exported symbols differ from tests/data/public_symbols.txt: not listed %s; listed but "
         "not exported %s" % (sorted(set(exported) - set(listed)),
                              sorted(set(listed) - set(exported))))

declared = set()
for h in glob.glob(os.path.join(root, "libformat/include/rosetta/*.h")):
    text = open(h).read()
    for m in re.finditer(r"^RF_API\b[^;(]*?\b(rf_\w+)\s*\(", text, re.M):
        declared.add(m.group(1))
if sorted(declared) != exported:
    fail("RF_API declarations differ from the exported symbols: declared only %s; exported "
         "only %s" % (sorted(declared - set(exported)), sorted(set(exported) - declared)))

doc_path = os.path.join(root, "docs/architecture.md")
doc = open(doc_path).read() if os.path.exists(doc_path) else ""
undocumented = [s for s in exported if not re.search(r"\b%s\b" % re.escape(s), doc)]
if undocumented:
    fail("%d exported symbols are not in docs/architecture.md: %s"
         % (len(undocumented), ", ".join(undocumented)))

public = {os.path.basename(p) for p in glob.glob(os.path.join(root, "libformat/include/rosetta/*.h"))}
public |= {os.path.basename(p) for p in glob.glob(os.path.join(root, "libinfer/include/rosetta/*.h"))}
public.add("version.h")  # generated into the build tree
private_dirs = ["libformat/src", "libinfer/src", "kernels"]
# benchmarks of the kernel layer itself (bench/CMakeLists.txt, KERNEL_BENCHES) use its rk_ API
kernel_benches = {"bench/matmul.c"}
own = {}
for p in glob.glob(os.path.join(root, "tools/**/*.h"), recursive=True):
    own.setdefault(os.path.basename(p), p)
for src in sorted(glob.glob(os.path.join(root, "tools/**/*.[ch]"), recursive=True) +
                  glob.glob(os.path.join(root, "bench/**/*.[ch]"), recursive=True)):
    rel = os.path.relpath(src, root)
    for n, line in enumerate(open(src, encoding="utf-8", errors="replace"), 1):
        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if not m:
            continue
        inc = m.group(1)
        if inc.startswith("rosetta/"):
            if os.path.basename(inc) not in public:
                fail("%s:%d includes %s, which is not a public header" % (rel, n, inc))
            continue
        if os.path.exists(os.path.join(os.path.dirname(src), inc)) or (
                rel.startswith("tools/") and os.path.basename(inc) in own):
            continue  # the tool's own header
        hits = [d for d in private_dirs if os.path.exists(os.path.join(root, d, inc))
                and not (d == "kernels" and rel in kernel_benches)]
        if hits:
            fail("%s:%d includes \"%s\", a private header of %s" % (rel, n, inc, hits[0]))
        # anything else is an outside library's header (llama.h of the oracle build, ...)
print("public_api: %d exported symbols, all declared RF_API and documented%s"
      % (len(exported), "" if not failed else " (see the failures above)"))
sys.exit(1 if failed else 0)
PY
