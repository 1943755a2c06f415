#!/usr/bin/env bash
# apr compare-inference --against the transformers traces of the fixtures
# (fixtures/*/reference/hf_trace.rtrc, written by tests/interop/hf_trace.py with torch): every
# fixture in its three formats is at parity with transformers (no torch needed here); a planted
# fault (two rows of layer 1's ffn_up swapped) is located at layer 1, up; a damaged trace is
# refused with exit 3.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/compare_hf"
rm -rf "$tmp" && mkdir -p "$tmp"
apr="$APR_BIN/apr"
fail() { echo "FAIL: $*" >&2; exit 1; }
fixtures="tiny-qwen2 tiny-qwen2-tied tiny-qwen2-odd"
[ "${ROSETTA_VALGRIND:-0}" = 1 ] && fixtures="tiny-qwen2-odd"
for f in $fixtures; do
  fx="$ROSETTA_ROOT/fixtures/$f"
  trace="$fx/reference/hf_trace.rtrc"
  [ -f "$trace" ] || fail "$trace is missing (make it with tests/interop/hf_trace.py)"
  "$ROSETTA_BUILD/tests/write_formats" "$fx" --gguf "$tmp/$f.gguf" --apr "$tmp/$f.apr"
  "$apr" compare-inference --json --against "$trace" "$fx" "$tmp/$f.gguf" "$tmp/$f.apr" \
    >"$tmp/$f.json" 2>"$tmp/$f.err" || { cat "$tmp/$f.err" >&2; fail "$f: not at parity with transformers"; }
  python3 - "$tmp/$f.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["verdict"] == "parity" and d["first_divergence"] is None
assert d["reference"]["engine"].startswith("transformers")
for c in d["comparisons"]:
    judged = [s for s in c["stages"] if s["compared"]]
    assert len(judged) >= 10, "too few stages compared: %d" % len(judged)
    assert c["greedy"]["first_diff"] == -1, "continuation differs from transformers'"
    assert c["logits"]["same_top_p"] == 1.0
PY
done
f=tiny-qwen2
if [ "${ROSETTA_VALGRIND:-0}" != 1 ]; then
  python3 "$ROSETTA_ROOT/tests/tools/plant_faults.py" swap_up_rows "$tmp/$f.gguf" "$tmp/bad.gguf"
  rc=0
  "$apr" compare-inference --json --against "$ROSETTA_ROOT/fixtures/$f/reference/hf_trace.rtrc" \
    "$tmp/bad.gguf" >"$tmp/bad.json" 2>/dev/null || rc=$?
  [ $rc -eq 1 ] || fail "planted fault against the trace: exit $rc"
  python3 -c "
import json; f = json.load(open('$tmp/bad.json'))['first_divergence']
assert (f['layer'], f['stage']) == (1, 'up'), f"
fi
# damaged traces: truncated, a flipped byte in the zstd frame, a header offset out of range
t="$ROSETTA_ROOT/fixtures/tiny-qwen2-odd/reference/hf_trace.rtrc"
head -c 5000 "$t" >"$tmp/short.rtrc"
cp "$t" "$tmp/flip.rtrc"; printf '\377' | dd of="$tmp/flip.rtrc" bs=1 seek=20000 conv=notrunc status=none
for bad in short flip; do
  rc=0; "$apr" compare-inference --against "$tmp/$bad.rtrc" "$ROSETTA_ROOT/fixtures/tiny-qwen2-odd" >/dev/null 2>"$tmp/$bad.err" || rc=$?
  [ $rc -eq 3 ] || fail "$bad trace: exit $rc, expected 3"
  grep -q "rtrc" "$tmp/$bad.err" || fail "$bad trace: the message does not name the file"
done
echo "compare_hf: ok"
