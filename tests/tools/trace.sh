#!/usr/bin/env bash
# apr trace end to end: the statistics JSON (every stage of every layer, min/max/mean/std/NaN/
# Inf/L2, anomaly flags, attention entropy and residual ratio per layer) agrees with numpy on the
# full tensors of the same run read back from the --full container; the container compares at
# parity with a fresh run (apr compare-inference --against) and locates a planted fault; a model
# with a zeroed head is flagged (flat logits); bad input and usage exit 3 and 2.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/trace"
rm -rf "$tmp" && mkdir -p "$tmp"
apr="$APR_BIN/apr"
fail() { echo "FAIL: $*" >&2; exit 1; }
fx="$ROSETTA_ROOT/fixtures/tiny-qwen2"
p="The trace of a tiny model: 1 2 3."
"$apr" quantize -q "$fx" "$tmp/m.gguf" f32 >/dev/null
valgrind=${ROSETTA_VALGRIND:-0}
if [ "$valgrind" = 1 ]; then
  # under make test-valgrind: one run writes the container and prints the statistics
  "$apr" trace "$tmp/m.gguf" -p "$p" -n 5 --full --json -o "$tmp/full.rtrc" >"$tmp/stats.json"
else
  "$apr" trace "$tmp/m.gguf" -p "$p" -n 5 -o "$tmp/stats.json"
  "$apr" trace "$tmp/m.gguf" -p "$p" -n 5 --full -o "$tmp/full.rtrc"
fi
python3 - "$tmp/stats.json" "$tmp/full.rtrc" <<'PY'
import json, struct, sys
import numpy as np
stats = json.load(open(sys.argv[1]))
raw = open(sys.argv[2], "rb").read()
assert raw[:4] == b"RTRC"
version, flags, hlen, plen, rlen = struct.unpack_from("<IIIQQ", raw, 4)
assert version == 1 and flags == 1 and 32 + hlen + plen == len(raw)
header = json.loads(raw[32:32 + hlen])
assert header["tokens"] == stats["tokens"] and header["greedy"] == stats["greedy"]
assert len(stats["stages"]) == 3 + 15 * 2, len(stats["stages"])
assert len(stats["layers"]) == 2 and stats["anomalies"] == []
for l in stats["layers"]:
    assert 0.1 < l["attn_entropy"] < 10 and 0 < l["residual_ratio"] < 0.99
import zstandard  # scripts/install-deps
payload = zstandard.ZstdDecompressor().decompress(raw[32 + hlen:], max_output_size=rlen)
if True:
    data = np.frombuffer(payload, dtype="<f4")
    by = {(t["stage"], t["layer"]): t for t in header["tensors"]}
    for s in stats["stages"]:
        t = by[(s["stage"], s["layer"])]
        x = data[t["offset"]:t["offset"] + t["rows"] * t["cols"]].astype(np.float64)
        assert abs(x.min() - s["min"]) <= 1e-6 * max(1, abs(s["min"])), s
        assert abs(x.mean() - s["mean"]) <= 1e-9 * max(1, abs(s["mean"])), s
        assert abs(x.std() - s["std"]) <= 1e-9 * max(1, s["std"]), s
        assert abs(np.sqrt((x * x).sum()) - s["l2"]) <= 1e-9 * max(1, s["l2"]), s
PY
# the recorded trace is what a fresh run computes (same engine, same dtypes: strict limits), and
# a planted fault is located against it; the text report names the trace's continuation length
python3 "$ROSETTA_ROOT/tests/tools/plant_faults.py" swap_up_rows "$tmp/m.gguf" "$tmp/bad.gguf" \
  zero_head "$tmp/m.gguf" "$tmp/zh.gguf" --layer 0
rc=0; "$apr" compare-inference --json --against "$tmp/full.rtrc" "$tmp/m.gguf" "$tmp/bad.gguf" >"$tmp/bad.json" || rc=$?
[ $rc -eq 1 ] || fail "planted fault vs trace: exit $rc"
python3 -c "
import json; d = json.load(open('$tmp/bad.json'))
ok, bad = d['comparisons']
assert ok['verdict'] == 'parity' and ok['greedy']['first_diff'] == -1, ok['first_divergence']
assert len(ok['greedy']['b']) == 5, ok['greedy']
f = bad['first_divergence']
assert (f['layer'], f['stage']) == (0, 'up') and f['diff_tensors'] is None, f"
if [ "$valgrind" != 1 ]; then
  # a zeroed head: flat logits are flagged
  "$apr" trace "$tmp/zh.gguf" -p "$p" -o - >"$tmp/zh.json"
  python3 -c "
import json; d = json.load(open('$tmp/zh.json'))
assert 'flat' in d['anomalies'], d['anomalies']
lg = [s for s in d['stages'] if s['stage'] == 'logits'][0]
assert lg['anomalies'] == ['flat'], lg"
fi
rc=0; "$apr" trace "$tmp/missing.gguf" -p x -o "$tmp/x.json" 2>/dev/null || rc=$?
[ $rc -eq 3 ] || fail "missing model: exit $rc"
rc=0; "$apr" trace "$tmp/m.gguf" -o "$tmp/x.json" 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "no prompt: exit $rc"
rc=0; "$apr" trace "$tmp/m.gguf" -p x -o "$tmp/no/such/dir/x.rtrc" --full 2>/dev/null || rc=$?
[ $rc -eq 4 ] || fail "unwritable output: exit $rc"
[ ! -e "$tmp/x.json" ] || fail "a failed run left an output"
echo "trace: ok"
