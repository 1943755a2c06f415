#!/usr/bin/env bash
# Real weights: the format tools on the genuine Qwen2.5-Coder-0.5B Q4_K_M GGUF. apr detect,
# apr inspect (--json: the counts and config in fixtures/real/README.md) and apr tensors
# --stats (every tensor finite, statistics equal to gguf-py's dequantization + numpy for a
# sample of tensors of each dtype).
set -euo pipefail
. "$ROSETTA_ROOT/tests/real/lib.sh"
real_model formats

"$APR_BIN/apr-detect" "$MODEL" >"$T/detect.txt"
grep -q "gguf" "$T/detect.txt" || fail "apr detect: $(cat "$T/detect.txt")"

"$APR_BIN/apr-inspect" --json "$MODEL" >"$T/inspect.json"
"$APR_BIN/apr-tensors" --stats --json "$MODEL" >"$T/stats.json"

python3 - "$T" "$MODEL" <<'PY'
import json, sys
import numpy as np
import gguf

tmp, model = sys.argv[1:3]
ins = json.load(open(f"{tmp}/inspect.json"))
def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

# The facts of fixtures/real/README.md.
if ins.get("file_size") != 491400064:
    fail(f"inspect file_size {ins.get('file_size')}")
counts = {d["dtype"]: d["tensors"] for d in ins["dtypes"]}
if counts != {"Q5_0": 133, "Q8_0": 13, "Q6_K": 12, "Q4_K": 12, "F32": 121}:
    fail(f"inspect dtype counts {counts}")
cfg = ins["config"]
want = {"architecture": "qwen2", "hidden_size": 896, "n_layers": 24, "n_heads": 14,
        "n_kv_heads": 2, "head_dim": 64, "intermediate_size": 4864, "vocab_size": 151936}
for k, v in want.items():
    if cfg.get(k) != v:
        fail(f"inspect config {k}: {cfg.get(k)!r}, expected {v!r}")
tok = ins["tokenizer"]
if tok.get("tokens") != 151936 or tok.get("merges") != 151387:
    fail(f"inspect tokenizer counts {tok.get('tokens')} tokens {tok.get('merges')} merges")

stats = {t["name"]: t for t in json.load(open(f"{tmp}/stats.json"))["tensors"]}
if len(stats) != 291:
    fail(f"tensors --stats lists {len(stats)} tensors, expected 291")
for name, t in stats.items():
    s = t["stats"]
    if s.get("nan", 0) or s.get("inf", 0):
        fail(f"{name}: {s.get('nan')} NaN, {s.get('inf')} Inf")

# Independent check: gguf-py dequantizes one tensor of each dtype; numpy computes the statistics.
reader = gguf.GGUFReader(model)
seen = set()
checked = 0
for rt in reader.tensors:
    dt = rt.tensor_type.name
    if dt in seen:
        continue
    seen.add(dt)
    vals = gguf.quants.dequantize(rt.data, rt.tensor_type).astype(np.float64).ravel()
    s = stats[rt.name]["stats"]
    for key, ref in (("min", vals.min()), ("max", vals.max()), ("mean", vals.mean()),
                     ("std", vals.std())):
        got = s[key]
        if abs(got - ref) > 1e-5 * max(1.0, abs(ref)):
            fail(f"{rt.name} ({dt}) {key}: apr {got!r}, gguf-py+numpy {ref!r}")
    checked += 1
print(f"real/formats: inspect facts ok, 291 tensors finite, stats of {checked} dtypes equal gguf-py+numpy")
PY
