#!/usr/bin/env bash
# End-to-end test of `apr quantize` on the fixtures, without llama.cpp (quantize_oracle.sh compares
# with llama.cpp): exit codes, the plan on stdout and in JSON, refusals for formats that cannot
# hold a plan, determinism over thread counts, idempotence, and that nothing is left behind.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"

T="$TEST_TMP/quantize"
rm -rf "$T"
mkdir -p "$T"
APR="$APR_BIN/apr-quantize"
FX="$ROSETTA_ROOT/fixtures"
fail=0
check() { # check DESCRIPTION EXPECTED_RC ACTUAL_RC
  if [ "$2" -ne "$3" ]; then
    echo "FAIL: $1: exit $3, expected $2"
    fail=1
  fi
}
rc_of() {
  set +e
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  set -e
  echo $rc
}

# usage errors: exit 2
check "no arguments" 2 "$(rc_of "$APR")"
check "unknown mix" 2 "$(rc_of "$APR" "$FX/tiny-qwen2" "$T/x.gguf" q9_9)"
grep -q "unknown TYPE 'q9_9'" "$T/err" || { echo "FAIL: unknown mix message: $(cat "$T/err")"; fail=1; }
check "bad --threads" 2 "$(rc_of "$APR" --threads -3 "$FX/tiny-qwen2" "$T/x.gguf" q8_0)"
check "bad --tensor-type" 2 "$(rc_of "$APR" --tensor-type attn_v "$FX/tiny-qwen2" "$T/x.gguf" q8_0)"
check "bad --tensor-type type" 2 "$(rc_of "$APR" --tensor-type attn_v=q9 "$FX/tiny-qwen2" "$T/x.gguf" q8_0)"
check "bad regex" 2 "$(rc_of "$APR" --tensor-type 'a(=q8_0' "$FX/tiny-qwen2" "$T/x.gguf" q8_0)"
check "bad --output-tensor-type" 2 "$(rc_of "$APR" --output-tensor-type apr_q4 "$FX/tiny-qwen2" "$T/x.gguf" q8_0)"
check "type Rosetta cannot produce" 2 "$(rc_of "$APR" --tensor-type attn_q=iq4_nl "$FX/tiny-qwen2" "$T/x.gguf" q4_k_m)"
grep -q "cannot produce IQ4_NL" "$T/err" || { echo "FAIL: iq4_nl refusal: $(cat "$T/err")"; fail=1; }
check "bad --format" 2 "$(rc_of "$APR" --format onnx "$FX/tiny-qwen2" "$T/x.gguf" q8_0)"
check "unknown extension" 2 "$(rc_of "$APR" "$FX/tiny-qwen2" "$T/x.bin" q8_0)"
check "help" 0 "$(rc_of "$APR" --help)"
# unreadable input: exit 3
check "missing input" 3 "$(rc_of "$APR" "$T/none.gguf" "$T/x.gguf" q8_0)"
printf 'GGUF\003\000\000\000\377\377' >"$T/trunc.gguf"
check "truncated GGUF" 3 "$(rc_of "$APR" "$T/trunc.gguf" "$T/x.gguf" q8_0)"
grep -q "trunc.gguf" "$T/err" || { echo "FAIL: error does not name the file: $(cat "$T/err")"; fail=1; }
check "missing imatrix" 3 "$(rc_of "$APR" --imatrix "$T/none.dat" "$FX/tiny-qwen2" "$T/x.gguf" q4_k_m)"
printf '\001\000\000\000\100\000\000\000' >"$T/bad.dat"
check "malformed imatrix" 3 "$(rc_of "$APR" --imatrix "$T/bad.dat" "$FX/tiny-qwen2" "$T/x.gguf" q4_k_m)"
grep -q "bad.dat" "$T/err" || { echo "FAIL: imatrix error does not name the file: $(cat "$T/err")"; fail=1; }
cp "$FX/tiny-qwen2/model.safetensors" "$T/bare.safetensors" # no config.json: no architecture
check "GGUF from a bare SafeTensors file" 5 "$(rc_of "$APR" "$T/bare.safetensors" "$T/x.gguf" q8_0)"
grep -q "bare.safetensors: rule gguf.architecture: .*the model's architecture is unknown" "$T/err" \
  || { echo "FAIL: bare SafeTensors message: $(cat "$T/err")"; fail=1; }
[ ! -e "$T/x.gguf" ] || { echo "FAIL: a failed run left $T/x.gguf"; fail=1; }

# the plan on the odd-width fixture (docs/formats/quantization.md: the Qwen2.5-0.5B class)
check "dry run" 0 "$(rc_of "$APR" --dry-run "$FX/tiny-qwen2-odd" q4_k_m)"
n_q50=$(grep -c -- '-> Q5_0 ' "$T/out" || true)
n_q80=$(grep -c -- '-> Q8_0 ' "$T/out" || true)
grep -q "21 of 38 tensor(s) required fallback quantization" "$T/out" \
  || { echo "FAIL: fallback count line missing"; fail=1; }
if [ "$n_q50" -ne 19 ] || [ "$n_q80" -ne 3 ]; then
  echo "FAIL: odd fixture q4_k_m: $n_q50 x Q5_0 (want 19), $n_q80 x Q8_0 (want 3)"
  fail=1
fi
grep -q 'token_embd.weight.*-> Q8_0 .*tied token embedding' "$T/out" \
  || { echo "FAIL: tied token_embd should take the output rule"; fail=1; }
check "dry run json" 0 "$(rc_of "$APR" --dry-run --json "$FX/tiny-qwen2-odd" q4_k_m)"
python3 - "$T/out" <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["mix"] == "Q4_K_M" and d["file_type"] == 15 and d["n_tensors"] == 38, d
assert d["n_fallback"] == 21 and d["written"] is False
t = {x["name"]: x for x in d["tensors"]}
e = t["blk.2.attn_v.weight"]
assert e["chosen_dtype"] == "Q6_K" and e["dtype"] == "Q8_0" and e["fallback"], e
assert e["source_name"] == "model.layers.2.self_attn.v_proj.weight", e
assert t["blk.0.attn_norm.weight"]["dtype"] == "F32" and not t["blk.0.attn_norm.weight"]["quantizable"]
assert sum(x["dst_bytes"] for x in d["tensors"]) == d["dst_bytes"]
PY

# writing: deterministic over thread counts, and idempotent (a Q4_K_M file re-planned as Q4_K_M
# keeps every tensor, so the bytes are copied)
check "q4_k_m 1 thread" 0 "$(rc_of "$APR" -q --threads 1 "$FX/tiny-qwen2" "$T/a.gguf" q4_k_m)"
check "q4_k_m 2 threads" 0 "$(rc_of "$APR" -q --threads 2 "$FX/tiny-qwen2" "$T/b.gguf" q4_k_m)"
cmp -s "$T/a.gguf" "$T/b.gguf" || { echo "FAIL: output depends on --threads"; fail=1; }
check "requantize same mix" 0 "$(rc_of "$APR" -q "$T/a.gguf" "$T/c.gguf" q4_k_m)"
cmp -s "$T/a.gguf" "$T/c.gguf" || { echo "FAIL: q4_k_m of a q4_k_m file is not a copy"; fail=1; }
grep -c " kept " "$T/out" | grep -qx 27 || { echo "FAIL: every tensor should be kept"; fail=1; }

# formats that cannot hold the plan: exit 2, no output
check "safetensors q8_0" 2 "$(rc_of "$APR" "$FX/tiny-qwen2" "$T/q.safetensors" q8_0)"
grep -q "no quantized types" "$T/err" || { echo "FAIL: safetensors refusal: $(cat "$T/err")"; fail=1; }
check "apr q5_0" 2 "$(rc_of "$APR" "$FX/tiny-qwen2-odd" "$T/q.apr" q4_k_m)"
grep -q "cannot hold Q8_0\|cannot hold Q5_0" "$T/err" || { echo "FAIL: apr refusal: $(cat "$T/err")"; fail=1; }
[ ! -e "$T/q.safetensors" ] && [ ! -e "$T/q.apr" ] || { echo "FAIL: refused runs left files"; fail=1; }
check "safetensors f16" 0 "$(rc_of "$APR" -q "$FX/tiny-qwen2" "$T/h.safetensors" f16)"
python3 - "$T/h.safetensors" <<'PY' || fail=1
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
assert h["model.layers.0.mlp.down_proj.weight"]["dtype"] == "F16", h["model.layers.0.mlp.down_proj.weight"]
assert h["model.norm.weight"]["dtype"] == "BF16", h["model.norm.weight"]
PY
leftover=$(find "$T" -name '.apr-quantize-*' -o -name '.rosetta-spill-*' | head -n 1)
[ -z "$leftover" ] || { echo "FAIL: temporary file left: $leftover"; fail=1; }

[ "$fail" -eq 0 ] && echo "quantize: all checks passed"
exit "$fail"
