#!/usr/bin/env bash
# apr check end to end: every stage passes on the three fixtures (SafeTensors) and on a GGUF
# copy; a zeroed LM head (garbage generation: one token repeated) fails stages 8 and 10 and a
# vocabulary shifted by one fails stage 1, with exit 1 in text and --json mode alike. Under
# make test-valgrind (ROSETTA_VALGRIND=1) a smaller set runs.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/check"
rm -rf "$tmp" && mkdir -p "$tmp"
apr="$APR_BIN/apr"
fail() { echo "FAIL: $*" >&2; exit 1; }
fixtures="tiny-qwen2 tiny-qwen2-tied tiny-qwen2-odd"
[ "${ROSETTA_VALGRIND:-0}" = 1 ] && fixtures="tiny-qwen2-odd"
for f in $fixtures; do
  "$apr" check "$ROSETTA_ROOT/fixtures/$f" >"$tmp/$f.txt" || { cat "$tmp/$f.txt" >&2; fail "$f: check failed"; }
  grep -q "^10 of 10 stages passed" "$tmp/$f.txt" || fail "$f: summary line"
done
"$apr" quantize -q "$ROSETTA_ROOT/fixtures/tiny-qwen2" "$tmp/m.gguf" f32 >/dev/null
if [ "${ROSETTA_VALGRIND:-0}" != 1 ]; then
  "$apr" check --json "$tmp/m.gguf" >"$tmp/ok.json" || fail "GGUF copy: check failed"
fi
specs="zero_head:lm_head,greedy vocab_shift:tokenizer" modes="text json"
# under make test-valgrind (every tool under memcheck): one fault, --json only
[ "${ROSETTA_VALGRIND:-0}" = 1 ] && specs="zero_head:lm_head,greedy" modes="json"
python3 "$ROSETTA_ROOT/tests/tools/plant_faults.py" zero_head "$tmp/m.gguf" "$tmp/zero_head.gguf" \
  vocab_shift "$tmp/m.gguf" "$tmp/vocab_shift.gguf"
for spec in $specs; do
  IFS=: read -r fault failing <<<"$spec"
  for mode in $modes; do
    rc=0
    if [ $mode = json ]; then "$apr" check --json "$tmp/$fault.gguf" >"$tmp/$fault.json" || rc=$?
    else "$apr" check "$tmp/$fault.gguf" >"$tmp/$fault.txt" || rc=$?; fi
    [ $rc -eq 1 ] || fail "$fault ($mode): exit $rc, expected 1"
  done
  python3 - "$tmp/$fault.json" "$failing" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
want = sys.argv[2].split(",")
failed = [s["name"] for s in d["stages"] if not s["pass"]]
assert failed == want, (failed, want)
assert d["all_passed"] is False and d["total"] == 10 and d["passed"] == 10 - len(want)
PY
done
rc=0; "$apr" check "$tmp/missing.gguf" 2>/dev/null || rc=$?
[ $rc -eq 3 ] || fail "missing model: exit $rc"
rc=0; "$apr" check 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "no model: exit $rc"
echo "check: ok"
