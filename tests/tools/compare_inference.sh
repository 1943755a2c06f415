#!/usr/bin/env bash
# apr compare-inference end to end on the fixtures.
#  Parity: SafeTensors vs GGUF vs APR copies (F32 and BF16) of each fixture; Q8_0 and Q4_K_M
#  copies as parity within their limits, with the warning that the quantization levels differ.
#  Faults (tests/tools/plant_faults.py): each is a divergence whose first divergence is the
#  stage the fault feeds ("layer 1, k" for a Q4_K scale byte of layer 1's attn_k ...), with the
#  diff-tensors status of the feeding weights naming the damaged one; the contract stops two of
#  them first (exit 5); --json follows the documented schema; unreadable input exits 3, usage
#  errors 2; a pipe gives no escape codes.
# Every model of one comparison is run in one process (A once, then each B against it), so the
# whole script starts few processes: under make test-valgrind (ROSETTA_VALGRIND=1, every tool
# under memcheck) a smaller set runs.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/compare_inference"
rm -rf "$tmp" && mkdir -p "$tmp"
apr="$APR_BIN/apr"
plant="$ROSETTA_ROOT/tests/tools/plant_faults.py"
prompt="Hello world, this is a test of the verifier: 1 + 2 = 3."
valgrind=${ROSETTA_VALGRIND:-0}
fail() { echo "FAIL: $*" >&2; exit 1; }

# compare EXPECTED_EXIT OUT.json ARGS...: runs apr compare-inference --json
compare() {
  local want=$1 out=$2 rc=0
  shift 2
  "$apr" compare-inference --json -p "$prompt" -n 4 "$@" >"$out" 2>"$out.err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$out.err" >&2; fail "compare-inference $* exited $rc, expected $want"; }
}

# The copies: F32 and BF16 in the three formats, Q8_0 and Q4_K_M GGUFs (fewer under valgrind).
fixtures="tiny-qwen2 tiny-qwen2-tied tiny-qwen2-odd"
[ "$valgrind" = 1 ] && fixtures="tiny-qwen2"
for f in $fixtures; do
  fx="$ROSETTA_ROOT/fixtures/$f"
  models=("$fx")
  types="f32 bf16 q8_0 q4_k_m"
  [ "$valgrind" = 1 ] && types="bf16"
  for t in $types; do
    "$apr" quantize -q "$fx" "$tmp/$f.$t.gguf" "$t" >/dev/null
    models+=("$tmp/$f.$t.gguf")
    case $t in q*) continue ;; esac
    # SafeTensors: a directory (weights + config.json + tokenizer files)
    for fmt in apr:apr safetensors:st; do
      [ "$valgrind" = 1 ] && [ ${fmt%:*} = safetensors ] && continue
      "$apr" quantize -q --format ${fmt%:*} "$fx" "$tmp/$f.$t.${fmt#*:}" "$t" >/dev/null
      models+=("$tmp/$f.$t.${fmt#*:}")
    done
  done
  compare 0 "$tmp/parity.$f.json" "${models[@]}"
done

# Planted faults on tiny-qwen2 (untied: it has output.weight), each compared with its clean copy
# (same dtypes: the strict limits). FAULT:LAYER:STAGE:DAMAGED (the feeding weight or config value
# whose diff-tensors status must fail).
# Under valgrind: one fault on the BF16 copy (Q4_K_M quantization is slow under memcheck).
base="$tmp/tiny-qwen2.f32.gguf"
faults="swap_up_rows:1:up:blk.1.ffn_up.weight zero_qkv_bias:1:q:blk.1.attn_q.bias
        transpose_o:1:o_proj:blk.1.attn_output.weight rope_theta:0:q_rope:rope_theta
        vocab_shift:-1:tokens:- zero_head:-1:logits:output.weight
        zero_eps:0:attn_norm:rms_norm_eps"
[ "$valgrind" = 1 ] && base="$tmp/tiny-qwen2.bf16.gguf" faults="zero_eps:0:attn_norm:rms_norm_eps"
args=() planted=()
for spec in $faults; do
  args+=("${spec%%:*}" "$base" "$tmp/${spec%%:*}.gguf")
  planted+=("$tmp/${spec%%:*}.gguf")
done
if [ "$valgrind" != 1 ]; then
  "$apr" quantize -q "$ROSETTA_ROOT/fixtures/tiny-qwen2" "$tmp/q4.gguf" q4_k_m >/dev/null
  args+=(q4k_scale "$tmp/q4.gguf" "$tmp/q4k_scale.gguf")
fi
python3 "$plant" "${args[@]}"
compare 1 "$tmp/faults.json" "$base" "${planted[@]}"
[ "$valgrind" = 1 ] || compare 1 "$tmp/q4k_scale.json" "$tmp/q4.gguf" "$tmp/q4k_scale.gguf"

if [ "$valgrind" != 1 ]; then
  # RoPE type NORM in an APR file: the family contract refuses it first (exit 5, rule named);
  # past the contract the verifier locates it at layer 0's q_rope.
  python3 "$plant" rope_norm "$tmp/tiny-qwen2.f32.apr" "$tmp/rope_norm.apr" \
    transpose_gate "$base" "$tmp/tg.gguf"
  compare 5 "$tmp/rn.json" "$tmp/tiny-qwen2.f32.apr" "$tmp/rope_norm.apr"
  grep -q "config.rope_type" "$tmp/rn.json.err" || fail "rope_norm: the rule is not named"
  compare 1 "$tmp/rn.json" --skip-contract "$tmp/tiny-qwen2.f32.apr" "$tmp/rope_norm.apr"
  # A non-square weight stored transposed with its shape swapped: refused with the shapes.
  compare 5 "$tmp/tg.json" "$base" "$tmp/tg.gguf"
  grep -q "expected \[768, 256\].*found \[256, 768\]" "$tmp/tg.json.err" || fail "transpose_gate message"
  compare 3 "$tmp/tg.json" --skip-contract "$base" "$tmp/tg.gguf"
  grep -q "blk.1.ffn_gate.weight" "$tmp/tg.json.err" || fail "transpose_gate: tensor not named"
  # --stage-tolerance loosens one stage: zero_eps passes attn_norm with a limit of 1
  compare 1 "$tmp/st.json" --stage-tolerance attn_norm=1 "$base" "$tmp/zero_eps.gguf"
fi

# Every JSON document: the schema, the verdicts, each fault's first divergence and the
# diff-tensors status of the weights that feed it.
python3 - "$tmp" "$valgrind" "$faults" <<'EOF'
import glob, json, os, sys
tmp, valgrind, faults = sys.argv[1], sys.argv[2] == "1", sys.argv[3].split()

def load(name):
    d = json.load(open(os.path.join(tmp, name)))
    for key in ("schema", "prompt", "reference", "verdict", "first_divergence", "comparisons"):
        assert key in d, "%s: no key %s" % (name, key)
    assert d["schema"] == "rosetta.compare-inference/1"
    for c in d["comparisons"]:
        for key in ("model", "verdict", "first_divergence", "limits", "warnings", "tokens",
                    "stages", "greedy"):
            assert key in c, "%s: no key %s in a comparison" % (name, key)
    return d

def divergence(name, c, layer, stage, damaged):
    f = c["first_divergence"]
    assert c["verdict"] == "divergence" and f is not None, "%s: %s at parity" % (name, c["model"])
    assert (f["layer"], f["stage"]) == (layer, stage), \
        "%s: first divergence %s, expected layer %d stage %s" % (name, f, layer, stage)
    for key in ("tensor", "weights", "position", "diff_tensors"):
        assert key in f, "%s: first_divergence lacks %s" % (name, key)
    if damaged == "-":
        assert f["diff_tensors"] is None, f
        return
    status = {w["name"]: w for w in f["diff_tensors"]}
    assert damaged in status and status[damaged]["changed"], (name, damaged, f["diff_tensors"])
    assert [w for w in f["diff_tensors"] if w["changed"]] == [status[damaged]], f["diff_tensors"]
    for w in f["diff_tensors"]:
        assert w["ok"] != w["changed"] or w["status"] == "within-tolerance", w

parity = sorted(glob.glob(os.path.join(tmp, "parity.*.json")))
assert len(parity) == (1 if valgrind else 3), parity
for path in parity:
    d = load(os.path.basename(path))
    assert d["verdict"] == "parity" and d["first_divergence"] is None, path
    for c in d["comparisons"]:
        assert all(s["pass"] for s in c["stages"]), "%s: parity with a failing stage" % path
        other = c["model"]["level"] != d["reference"]["level"]
        warned = any("different quantization levels" in w for w in c["warnings"])
        assert warned == other, "%s %s: level warning %s" % (path, c["model"]["path"], warned)
        if c["model"]["level"] in ("q8", "q4", "q5"):
            assert warned, c["model"]
        elif c["model"]["dtypes"] == d["reference"]["dtypes"]:
            assert c["limits"]["nmse"] == 1e-9 and c["limits"]["judge_greedy"], c["limits"]
    assert len(d["comparisons"]) == (2 if valgrind else 8), len(d["comparisons"])

d = load("faults.json")
assert d["verdict"] == "divergence"
assert len(d["comparisons"]) == len(faults)
for spec, c in zip(faults, d["comparisons"]):
    fault, layer, stage, damaged = spec.split(":")
    assert c["model"]["path"].endswith(fault + ".gguf"), c["model"]["path"]
    divergence(fault, c, int(layer), stage, damaged)
assert d["first_divergence"] == d["comparisons"][0]["first_divergence"]
if not valgrind:
    c = load("q4k_scale.json")["comparisons"][0]
    divergence("q4k_scale", c, 1, "k", "blk.1.attn_k.weight")
    f = c["first_divergence"]
    assert f["tensor"] == "blk.1.attn_k.weight" and "blk.1.attn_k.bias" in f["weights"], f
    divergence("rope_norm", load("rn.json")["comparisons"][0], 0, "q_rope", "rope_type")
    f = load("st.json")["first_divergence"]
    assert f["stage"] != "attn_norm", f
EOF

# The text report: the table stops at the first divergence and names it with the status of the
# feeding weights; verdict line; no escape codes through a pipe.
rc=0
if [ "$valgrind" = 1 ]; then
  a="$base" b="$tmp/zero_eps.gguf" where="layer 0, stage attn_norm, tensor blk.0.attn_norm.weight"
  status="^ +blk.0.attn_norm.weight +identical .*
^ +rms_norm_eps +differs +A 9.99999997e-07, B 0$"
else
  a="$tmp/q4.gguf" b="$tmp/q4k_scale.gguf" where="layer 1, stage k, tensor blk.1.attn_k.weight"
  status="^ +blk.1.attn_k.weight +(small|medium|large|critical) .*
^ +blk.1.attn_k.bias +identical "
fi
"$apr" compare-inference -p "$prompt" -n 2 "$a" "$b" >"$tmp/t.txt" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "text mode exit $rc"
grep -q "^first divergence: $where" "$tmp/t.txt" || fail "text: first divergence line"
while IFS= read -r line; do
  grep -Eq "$line" "$tmp/t.txt" || fail "text: no line matching '$line' (diff-tensors status)"
done <<<"$status"
grep -q "^verdict: divergence" "$tmp/t.txt" || fail "text: verdict"
grep -q "more rows (--all shows them)" "$tmp/t.txt" || fail "text: table not cut at the divergence"
if grep -q $'\033' "$tmp/t.txt"; then fail "escape codes in piped output"; fi

# Bad input and usage (each stops before any model runs but the first).
rc=0; "$apr" compare-inference "$tmp/missing.gguf" "$base" >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "missing file: exit $rc, expected 3"
printf 'not a model' >"$tmp/junk.gguf"
rc=0; "$apr" compare-inference "$tmp/junk.gguf" "$base" >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "junk file: exit $rc, expected 3"
rc=0; "$apr" compare-inference --against "$tmp/junk.gguf" "$base" >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "junk trace: exit $rc, expected 3"
rc=0; "$apr" compare-inference "$base" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "one model: exit $rc, expected 2"
rc=0; "$apr" compare-inference --stage-tolerance nope=1 "$base" "$base" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "bad stage name: exit $rc, expected 2"
if [ "$valgrind" != 1 ]; then
  rc=0; "$apr" compare-inference "$base" "$tmp/junk.gguf" >/dev/null 2>&1 || rc=$?
  [ $rc -eq 3 ] || fail "junk B: exit $rc, expected 3"
fi
echo "compare_inference: ok"
