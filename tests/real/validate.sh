#!/usr/bin/env bash
# apr validate on the real Qwen2.5-Coder-0.5B Q4_K_M GGUF (scripts/fetch-real-model): every
# structural and data-quality rule passes, the file is recognised as the qwen2 family's 0.5B size,
# and each rule checked what a 24-layer untied Qwen2 has (291 tensors). `make test-real`; SKIP
# without the file, a failure under ROSETTA_ORACLE_REQUIRED=1 (CI) (tests/real/lib.sh).
set -euo pipefail
. "$ROSETTA_ROOT/tests/real/lib.sh"
real_model validate

python3 - "$APR_BIN/apr-validate" "$MODEL" <<'PY'
import json, subprocess, sys, time
validate, model = sys.argv[1:3]
t0 = time.monotonic()
p = subprocess.run([validate, "--json", "--strict", model], capture_output=True, text=True,
                   timeout=600)
seconds = time.monotonic() - t0
if p.returncode != 0:
    sys.exit(f"FAIL: apr validate --strict {model}: exit {p.returncode}\n{p.stdout[-3000:]}"
             f"\n{p.stderr}")
j = json.loads(p.stdout)
checked = {r["id"]: r["checked"] for r in j["rules"]}
want = {
    "layout.duplicate_role": 291,        # every tensor has a role
    "layout.unknown_tensor": 291,
    "layout.missing_tensor": 3 + 24 * 9,  # 3 whole-model roles (untied: output.weight) + 9 per layer
    "layout.bias_presence": 24 * 3 * 2,   # q/k/v biases: present and required in 24 layers
    "layout.shape": 289,                  # all but the embedding and the head (own rules)
    "layout.embedding_shape": 1,
    "layout.lm_head_shape": 1,
    "quality.nan_inf": 291,
    "quality.dequantize": 291,
    "quality.spot_rows": 2,               # embedding and head
}
bad = {k: (checked.get(k), v) for k, v in want.items() if checked.get(k) != v}
if bad or not j["passed"] or j["family"] != "qwen2" or j["size"] != "0.5B":
    sys.exit(f"FAIL: {model}: family {j['family']} size {j['size']} passed {j['passed']}; "
             f"checked (found, expected): {bad}")
print(f"validate (real): {len(j['rules'])} rules passed on {model} in {seconds:.1f} s",
      file=sys.stderr)
PY
