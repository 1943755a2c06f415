#!/usr/bin/env bash
# apr compare-inference --engine-b llama: side B run by llama.cpp's own libllama (the pinned
# oracle build, loaded with dlopen) on the fixtures' GGUF copies. Checks: parity within the
# limits for two engines (llama.cpp rounds activations before its products: judged at level q8
# at least); the logits compared as llama-perplexity --kl-divergence does (mean/max KL, same top
# p, RMS dp printed); layer outputs, attention outputs and FFN outputs of every layer compared
# through llama.cpp's graph callback; tokens identical (llama.cpp's own tokenizer); a planted
# fault in B (both engines run the faulty file, A the clean one) located at its layer; a missing
# library is exit 3 with every place tried.
# SKIP (77) when the oracle cannot be built unless ROSETTA_ORACLE_REQUIRED=1 (CI: FAIL), and under
# make test-valgrind (memcheck of a C++ library loaded with dlopen is out of scope; the Rosetta
# side runs under memcheck in tools/compare_inference).
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"
if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  echo "SKIP: under make test-valgrind llama.cpp is not run (tools/compare_inference covers apr compare-inference)" >&2
  exit 77
fi
# shellcheck source=tests/oracle/oracle_build.sh
. "$ROSETTA_ROOT/tests/oracle/oracle_build.sh"
oracle_install compare_llama_oracle llama
export ROSETTA_LLAMA_LIB="$oracle_dir/lib/libllama.so"
T="$TEST_TMP/compare_llama_oracle"
rm -rf "$T" && mkdir -p "$T"
apr="$APR_BIN/apr"
fail() { echo "FAIL: $*" >&2; exit 1; }
prompt="The capital of France is Paris. 1 + 1 = 2."

for spec in tiny-qwen2:f32 tiny-qwen2-tied:bf16 tiny-qwen2-odd:q8_0; do
  f=${spec%:*} t=${spec#*:}
  "$apr" quantize -q "$ROSETTA_ROOT/fixtures/$f" "$T/$f.$t.gguf" "$t" >/dev/null
  rc=0
  "$apr" compare-inference --json -n 4 -p "$prompt" --engine-b llama "$T/$f.$t.gguf" \
    >"$T/$f.json" 2>"$T/$f.err" || rc=$?
  [ $rc -eq 0 ] || { cat "$T/$f.err" >&2; fail "$f $t: exit $rc against llama.cpp"; }
  grep -q "two engines" "$T/$f.json" || fail "$f: no warning about two engines"
done
python3 - "$T" <<'PY'
import json, os, sys
tmp = sys.argv[1]
for f, t in (("tiny-qwen2", "f32"), ("tiny-qwen2-tied", "bf16"), ("tiny-qwen2-odd", "q8_0")):
    d = json.load(open(os.path.join(tmp, f + ".json")))
    assert d["verdict"] == "parity", (f, d["first_divergence"])
    c = d["comparisons"][0]
    assert c["model"]["engine"] == "llama.cpp", c["model"]
    assert c["tokens"]["first_diff"] == -1, (f, c["tokens"])
    lg = c["logits"]
    for key in ("kl_mean", "kl_max", "same_top_p", "rms_dp", "argmax_a", "argmax_b"):
        assert lg[key] is not None, (f, key)
    # F32: the same products in another order; BF16 / Q8_0 (random weights): rounded activations
    assert lg["same_top_p"] >= (1.0 if t == "f32" else 0.8), (f, lg)
    emb = [s for s in c["stages"] if s["stage"] == "embedding"][0]
    assert emb["compared"] and emb["pass"], (f, emb)
    # stages llama.cpp names in its graph, compared in every layer
    layers = {s["layer"] for s in c["stages"] if s["layer"] >= 0}
    for stage in ("attn_out", "layer_out", "down", "attn_norm", "q_rope", "k_rope", "swiglu"):
        got = {s["layer"] for s in c["stages"] if s["stage"] == stage and s["compared"]}
        assert got == layers, (f, stage, got, layers)
    # o_proj has no name in llama.cpp's graph: reported, not compared
    assert all(not s["compared"] for s in c["stages"] if s["stage"] == "o_proj"), f
    judged = [s for s in c["stages"] if s["compared"]]
    worst = max(s["nmse"] for s in judged)
    print("%-16s %-5s stages %2d compared, worst NMSE %.2e (limit %.0e); KL mean %.2e max %.2e; "
          "same top %.0f %%; RMS dp %.2e" % (f, t, len(judged), worst, c["limits"]["nmse"],
                                            lg["kl_mean"], lg["kl_max"], 100 * lg["same_top_p"],
                                            lg["rms_dp"]))
PY

# A fault only llama.cpp runs: A = Rosetta on the clean F32 copy, B = llama.cpp on a copy with
# rows 0 and 1 of layer 1's ffn_up swapped: located at layer 1 (up is compared through
# llama.cpp's ffn_up node).
python3 "$ROSETTA_ROOT/tests/tools/plant_faults.py" swap_up_rows "$T/tiny-qwen2.f32.gguf" "$T/bad.gguf"
rc=0
"$apr" compare-inference --json -n 4 -p "$prompt" --engine-b llama "$T/tiny-qwen2.f32.gguf" "$T/bad.gguf" \
  >"$T/bad.json" 2>"$T/bad.err" || rc=$?
[ $rc -eq 1 ] || { cat "$T/bad.err" >&2; fail "planted fault through llama.cpp: exit $rc, expected 1"; }
python3 -c "
import json; f = json.load(open('$T/bad.json'))['first_divergence']
assert (f['layer'], f['stage']) == (1, 'up'), f
assert any(w['name'] == 'blk.1.ffn_up.weight' and not w['ok'] for w in f['diff_tensors']), f"

# No library: exit 3, naming where it looked.
rc=0
"$apr" compare-inference --engine-b llama --llama-lib "$T/no/libllama.so" "$T/tiny-qwen2.f32.gguf" \
  >/dev/null 2>"$T/nolib.err" || rc=$?
[ $rc -eq 3 ] || fail "missing libllama: exit $rc, expected 3"
grep -q "no/libllama.so" "$T/nolib.err" || fail "missing libllama: the path tried is not named"
# B must be GGUF for llama.cpp
rc=0
"$apr" compare-inference --engine-b llama "$T/tiny-qwen2.f32.gguf" "$ROSETTA_ROOT/fixtures/tiny-qwen2" \
  >/dev/null 2>"$T/st.err" || rc=$?
[ $rc -eq 3 ] || fail "SafeTensors through llama.cpp: exit $rc, expected 3"
grep -q "GGUF files only" "$T/st.err" || fail "SafeTensors through llama.cpp: message"
echo "compare_llama_oracle: ok"
