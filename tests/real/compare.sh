#!/usr/bin/env bash
# Real weights: apr compare-inference on the genuine Qwen2.5-Coder-0.5B Q4_K_M GGUF
# (fixtures/real/README.md), all against the shipped file, on one prompt:
#   1. its APR form: APR holds none of Q5_0 / Q8_0 (apr quantize --format apr refuses the Q4_K_M
#      mix with exit 2, naming the tensor), so the APR form holds the dequantized values as F32
#      (apr quantize --format apr ... f32, 2.4 GB): every stage and the logits must be
#      bit-identical (NMSE 0) through Rosetta's reference path, the continuation equal;
#   2. its Q8_0 requantization (apr quantize --allow-requantize): parity within the limits, and
#      tighter than the fixtures' plausibility limits (real weights): NMSE <= 1e-2 at every
#      stage, mean KL <= 1e-2, same top >= 90 %;
#   3. two planted faults, each located at its layer and stage with the damaged weight named by
#      its diff-tensors status: rows 0 and 1 of layer 11's ffn_up swapped (Q5_0) -> layer 11, up;
#      one scale byte of layer 5's ffn_down (Q4_K) flipped -> layer 5, down;
#   4. llama.cpp on the same file (--engine-b llama, the pinned oracle through dlopen): parity;
#      the KL divergence and top-1 figures are printed, llama-perplexity --kl-divergence style.
set -euo pipefail
. "$ROSETTA_ROOT/tests/real/lib.sh"
real_model compare
apr="$APR_BIN/apr"
prompt="<|im_start|>user
Write a Python function that returns the n-th Fibonacci number.<|im_end|>
<|im_start|>assistant
"

# APR refuses the shipped mix, and says why
rc=0
"$apr" quantize -q --allow-requantize --format apr "$MODEL" "$T/refused.apr" q4_k_m >/dev/null 2>"$T/refused.err" || rc=$?
[ $rc -eq 2 ] || fail "apr quantize --format apr q4_k_m: exit $rc, expected 2 (APR cannot hold Q8_0)"
grep -q "cannot hold Q8_0" "$T/refused.err" || fail "the refusal does not name Q8_0: $(cat "$T/refused.err")"
[ ! -e "$T/refused.apr" ] || fail "a refused quantization left a file"

"$apr" quantize -q --allow-requantize --format apr "$MODEL" "$T/m.apr" f32 >/dev/null
"$apr" quantize -q --allow-requantize "$MODEL" "$T/q8.gguf" q8_0 >/dev/null
python3 "$ROSETTA_ROOT/tests/tools/plant_faults.py" swap_up_rows@11 "$MODEL" "$T/up11.gguf" \
  q4k_scale_down@5 "$MODEL" "$T/down5.gguf"
rc=0
"$apr" compare-inference --reference --json -n 8 -p "$prompt" "$MODEL" "$T/m.apr" "$T/q8.gguf" \
  "$T/up11.gguf" "$T/down5.gguf" >"$T/rosetta.json" 2>"$T/rosetta.err" || rc=$?
[ $rc -eq 1 ] || { cat "$T/rosetta.err" >&2; fail "compare-inference: exit $rc, expected 1 (two faults)"; }

# 4. llama.cpp on the same file
. "$ROSETTA_ROOT/tests/oracle/oracle_build.sh"
oracle_install real/compare llama
export ROSETTA_LLAMA_LIB="$oracle_dir/lib/libllama.so"
rc=0
"$apr" compare-inference --reference --json -n 8 -p "$prompt" --engine-b llama "$MODEL" \
  >"$T/llama.json" 2>"$T/llama.err" || rc=$?
[ $rc -eq 0 ] || { cat "$T/llama.err" >&2; fail "against llama.cpp: exit $rc, expected 0 (parity)"; }

python3 - "$T/rosetta.json" "$T/llama.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
apr, q8, up, down = d["comparisons"]

def judged(c):
    return [s for s in c["stages"] if s["compared"]]

def line(name, c):
    lg = c["logits"]
    worst = max(judged(c), key=lambda s: s["nmse"])
    print("real/compare: %-22s %-10s %3d stages, worst NMSE %.3g (%s, layer %d); KL mean %.3g "
          "max %.3g; same top %.1f %%; RMS dp %.3g %%; argmax %d / %d; continuation %s"
          % (name, c["verdict"], len(judged(c)), worst["nmse"], worst["stage"], worst["layer"],
             lg["kl_mean"], lg["kl_max"], 100 * lg["same_top_p"], 100 * lg["rms_dp"],
             lg["argmax_a"], lg["argmax_b"],
             "equal" if c["greedy"]["first_diff"] < 0 else
             "differs at %d" % c["greedy"]["first_diff"]))

# 1. APR (F32 of the dequantized values): bit-identical through the reference path
line("APR (F32)", apr)
assert apr["verdict"] == "parity", apr["first_divergence"]
assert len(judged(apr)) == 1 + 24 * 15 + 2, len(judged(apr))
assert all(s["nmse"] == 0 and s["max_abs"] == 0 for s in judged(apr)), "APR: not bit-identical"
assert apr["greedy"]["first_diff"] == -1 and apr["tokens"]["first_diff"] == -1
# 2. Q8_0 requantization
line("Q8_0 requantization", q8)
assert q8["verdict"] == "parity", q8["first_divergence"]
assert any("different quantization levels" in w for w in q8["warnings"]), q8["warnings"]
assert max(s["nmse"] for s in judged(q8)) <= 1e-2
assert q8["logits"]["kl_mean"] <= 1e-2 and q8["logits"]["same_top_p"] >= 0.9, q8["logits"]
# 3. faults
for name, c, layer, stage, weight in (("swap_up_rows@11", up, 11, "up", "blk.11.ffn_up.weight"),
                                      ("q4k_scale_down@5", down, 5, "down",
                                       "blk.5.ffn_down.weight")):
    f = c["first_divergence"]
    print("real/compare: %-22s divergence at layer %d, stage %s, tensor %s (nmse %.3g); %s"
          % (name, f["layer"], f["stage"], f["tensor"], f["nmse"],
             ", ".join("%s %s" % (w["name"], w["status"]) for w in f["diff_tensors"])))
    assert (f["layer"], f["stage"], f["tensor"]) == (layer, stage, weight), f
    # the only feeding weight whose values changed (a Q4_K scale byte moves values by less
    # than the Q4_K tolerance of diff-tensors: changed, yet within tolerance)
    bad = [w["name"] for w in f["diff_tensors"] if w["changed"]]
    assert bad == [weight], f["diff_tensors"]
    # everything before the fault is bit-identical
    before = judged(c)[:[i for i, s in enumerate(judged(c))
                         if (s["layer"], s["stage"]) == (layer, stage)][0]]
    assert all(s["nmse"] == 0 for s in before), "a difference before the fault"
# 4. llama.cpp
l = json.load(open(sys.argv[2]))["comparisons"][0]
line("llama.cpp (same file)", l)
assert l["verdict"] == "parity" and l["model"]["engine"] == "llama.cpp", l["first_divergence"]
assert l["tokens"]["first_diff"] == -1, "llama.cpp tokenizes the prompt differently"
layers = {s["layer"] for s in judged(l) if s["stage"] == "layer_out"}
assert layers == set(range(24)), sorted(layers)
assert l["logits"]["same_top_p"] >= 0.9 and l["logits"]["kl_mean"] <= 1e-2, l["logits"]
PY
echo "real/compare: ok"
