#!/usr/bin/env bash
# Real weights: apr check passes its ten stages on the genuine Qwen2.5-Coder-0.5B (it failed the
# softmax stage while that stage summed 151,936 probabilities in float), and apr trace records
# every stage of every layer with no NaN/Inf flag (JSON checked with Python).
set -euo pipefail
. "$ROSETTA_ROOT/tests/real/lib.sh"
real_model check

"$APR_BIN/apr-check" "$MODEL" -t 2 >"$T/check.txt" || { cat "$T/check.txt" >&2; fail "apr check failed"; }
tail -1 "$T/check.txt"
grep -q "10 of 10 stages passed" "$T/check.txt" || fail "apr check: not 10 of 10"
"$APR_BIN/apr-trace" "$MODEL" -p "def fibonacci(n):" -t 2 -o "$T/trace.json" ||
  fail "apr trace failed"
python3 - "$T/trace.json" <<'PY' || fail "apr trace: bad statistics"
import json, sys
t = json.load(open(sys.argv[1]))
text = json.dumps(t)
assert '"nan": true' not in text, "a stage has NaN/Inf"
print("real/check: apr trace wrote %d bytes of statistics" % len(text))
PY
echo "real/check: ok"
