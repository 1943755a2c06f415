#!/usr/bin/env bash
# apr bench on a fixture: --json has the documented keys with positive speeds, the text form
# names both tests, -p 0 skips the prefill test; a bad model exits 3 and bad flags exit 2.
# (Speed itself is measured by bench/infer, never asserted in a test.)
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"
fx="$ROSETTA_ROOT/fixtures/tiny-qwen2-odd"
bench="$APR_BIN/apr-bench"
json=$("$bench" "$fx" -p 16 -n 4 -r 2 -t 2 --json)
python3 - "$json" <<'EOF'
import json, sys
o = json.loads(sys.argv[1])
need = ["model", "path", "threads", "prefill_tokens", "prefill_tok_s", "prefill_tok_s_min",
        "prefill_tok_s_max", "decode_tokens", "decode_tok_s", "decode_tok_s_min",
        "decode_tok_s_max", "load_s", "file_bytes", "weight_bytes", "kv_bytes", "peak_rss_mib"]
missing = [k for k in need if k not in o]
if missing:
    sys.exit(f"FAIL: apr bench --json lacks {missing}: {o}")
if not (o["prefill_tok_s"] > 0 and o["decode_tok_s"] > 0):
    sys.exit(f"FAIL: speeds {o['prefill_tok_s']} {o['decode_tok_s']}")
if not (o["prefill_tok_s_min"] <= o["prefill_tok_s"] <= o["prefill_tok_s_max"]):
    sys.exit("FAIL: the prefill median is not between min and max")
if o["threads"] != 2 or o["prefill_tokens"] != 16 or o["decode_tokens"] != 4:
    sys.exit(f"FAIL: parameters not echoed: {o}")
# 3 layers x 2 (K, V) x 16 positions (the longer test) x 1 KV head x 32 x 4 bytes
if o["kv_bytes"] != 3 * 2 * 16 * 32 * 4:
    sys.exit(f"FAIL: kv_bytes {o['kv_bytes']}")
EOF
text=$("$bench" "$fx" -p 8 -n 2 -r 1)
grep -q "^prefill  8 tokens" <<<"$text" && grep -q "^decode   2 tokens" <<<"$text" ||
  { echo "FAIL: text output: $text" >&2; exit 1; }
"$bench" "$fx" -p 0 -n 2 -r 1 | grep -q "^prefill" && { echo "FAIL: -p 0 ran the prefill test" >&2; exit 1; }
rc=0; "$bench" "$ROSETTA_ROOT/README.md" -r 1 2>/dev/null || rc=$?
[ "$rc" -eq 3 ] || { echo "FAIL: a non-model exits $rc, expected 3" >&2; exit 1; }
for args in "-r 0" "-p x" "--threads 0" "--kv f8" "--bogus"; do
  rc=0; "$bench" "$fx" $args 2>/dev/null || rc=$?
  [ "$rc" -eq 2 ] || { echo "FAIL: apr bench $args exits $rc, expected 2" >&2; exit 1; }
done
echo "bench: ok"
