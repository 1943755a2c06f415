#!/usr/bin/env bash
# apr compare-inference end to end on the fixtures.
#  Parity: SafeTensors vs GGUF vs APR copies (F32 and BF16) of each fixture; Q8_0 and Q4_K_M
#  copies as parity within their limits, with the warning that the quantization levels differ.
#  Faults (tests/tools/plant_faults.py): each is a divergence (exit 1) whose first divergence is
#  the stage the fault feeds ("layer 1, k" for a Q4_K scale byte of layer 1's attn_k ...);
#  the contract stops two of them first (exit 5); --json follows the documented schema;
#  unreadable input exits 3, usage errors 2; NO_COLOR and a pipe give no escape codes.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/compare_inference"
rm -rf "$tmp" && mkdir -p "$tmp"
apr="$APR_BIN/apr"
plant="$ROSETTA_ROOT/tests/tools/plant_faults.py"
prompt="Hello world, this is a test of the verifier: 1 + 2 = 3."
valgrind=${ROSETTA_VALGRIND:-0}
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect JSON_FILE VERDICT [LAYER STAGE]: the verdict and the first divergence of --json output
expect() {
  python3 - "$@" <<'EOF'
import json, sys
path, verdict = sys.argv[1], sys.argv[2]
d = json.load(open(path))
for key in ("schema", "prompt", "reference", "verdict", "first_divergence", "comparisons"):
    assert key in d, "no key %s" % key
assert d["verdict"] == verdict, "%s: verdict %s, expected %s" % (path, d["verdict"], verdict)
c = d["comparisons"][0]
for key in ("model", "verdict", "first_divergence", "limits", "warnings", "tokens", "stages",
            "greedy"):
    assert key in c, "no key %s in a comparison" % key
f = d["first_divergence"]
if verdict == "parity":
    assert f is None, "parity with a first divergence"
    assert all(s["pass"] for s in c["stages"]), "parity with a failing stage"
else:
    layer, stage = int(sys.argv[3]), sys.argv[4]
    assert f is not None and (f["layer"], f["stage"]) == (layer, stage), \
        "%s: first divergence %s, expected layer %d stage %s" % (path, f, layer, stage)
    for key in ("tensor", "weights", "position"):
        assert key in f, "first_divergence lacks %s" % key
EOF
}

# compare EXPECTED_EXIT OUT.json ARGS...: runs apr compare-inference --json
compare() {
  local want=$1 out=$2 rc=0
  shift 2
  "$apr" compare-inference --json -p "$prompt" -n 4 "$@" >"$out" 2>"$out.err" || rc=$?
  [ "$rc" -eq "$want" ] || { cat "$out.err" >&2; fail "compare-inference $* exited $rc, expected $want"; }
}

fixtures="tiny-qwen2 tiny-qwen2-tied tiny-qwen2-odd"
[ "$valgrind" = 1 ] && fixtures="tiny-qwen2"
for f in $fixtures; do
  fx="$ROSETTA_ROOT/fixtures/$f"
  for t in f32 bf16; do
    "$apr" quantize -q "$fx" "$tmp/$f.$t.gguf" "$t" >/dev/null
    "$apr" quantize -q --format apr "$fx" "$tmp/$f.$t.apr" "$t" >/dev/null
    "$apr" quantize -q --format safetensors "$fx" "$tmp/$f.$t.st" "$t" >/dev/null
    compare 0 "$tmp/p.json" "$fx" "$tmp/$f.$t.gguf" "$tmp/$f.$t.apr" "$tmp/$f.$t.st"
    expect "$tmp/p.json" parity
  done
  [ "$valgrind" = 1 ] && continue
  for t in q8_0 q4_k_m; do
    "$apr" quantize -q "$fx" "$tmp/$f.$t.gguf" "$t" >/dev/null
    compare 0 "$tmp/q.json" "$fx" "$tmp/$f.$t.gguf"
    expect "$tmp/q.json" parity
    grep -q "different quantization levels" "$tmp/q.json" || fail "$f $t: no warning about levels"
  done
done

# Planted faults on tiny-qwen2 (untied: it has output.weight), each against its clean copy.
base="$tmp/tiny-qwen2.f32.gguf"
"$apr" quantize -q "$ROSETTA_ROOT/fixtures/tiny-qwen2" "$tmp/q4.gguf" q4_k_m >/dev/null
faults="q4k_scale:q4.gguf:1:k swap_up_rows:f32:1:up zero_qkv_bias:f32:1:q transpose_o:f32:1:o_proj
        rope_theta:f32:0:q_rope vocab_shift:f32:-1:tokens zero_head:f32:-1:logits
        zero_eps:f32:0:attn_norm"
[ "$valgrind" = 1 ] && faults="q4k_scale:q4.gguf:1:k zero_eps:f32:0:attn_norm"
for spec in $faults; do
  IFS=: read -r fault src layer stage <<<"$spec"
  [ "$src" = f32 ] && src="$base" || src="$tmp/$src"
  python3 "$plant" "$fault" "$src" "$tmp/$fault.gguf"
  compare 1 "$tmp/$fault.json" "$src" "$tmp/$fault.gguf"
  expect "$tmp/$fault.json" divergence "$layer" "$stage"
done
# the first divergence names the weights that feed the stage
python3 -c "
import json; f = json.load(open('$tmp/q4k_scale.json'))['first_divergence']
assert f['tensor'] == 'blk.1.attn_k.weight' and 'blk.1.attn_k.bias' in f['weights'], f"

if [ "$valgrind" != 1 ]; then
  # RoPE type NORM in an APR file: the family contract refuses it first (exit 5, rule named);
  # past the contract the verifier locates it at layer 0's q_rope.
  python3 "$plant" rope_norm "$tmp/tiny-qwen2.f32.apr" "$tmp/rope_norm.apr"
  compare 5 "$tmp/rn.json" "$tmp/tiny-qwen2.f32.apr" "$tmp/rope_norm.apr"
  grep -q "config.rope_type" "$tmp/rn.json.err" || fail "rope_norm: the rule is not named"
  compare 1 "$tmp/rn.json" --skip-contract "$tmp/tiny-qwen2.f32.apr" "$tmp/rope_norm.apr"
  expect "$tmp/rn.json" divergence 0 q_rope
  # A non-square weight stored transposed with its shape swapped: refused with the shapes.
  python3 "$plant" transpose_gate "$base" "$tmp/tg.gguf"
  compare 5 "$tmp/tg.json" "$base" "$tmp/tg.gguf"
  grep -q "expected \[768, 256\].*found \[256, 768\]" "$tmp/tg.json.err" || fail "transpose_gate message"
  compare 3 "$tmp/tg.json" --skip-contract "$base" "$tmp/tg.gguf"
  grep -q "blk.1.ffn_gate.weight" "$tmp/tg.json.err" || fail "transpose_gate: tensor not named"
fi

# The text report: the table stops at the first divergence and names it; verdict line; no
# escape codes through a pipe.
rc=0
"$apr" compare-inference -p "$prompt" -n 2 "$tmp/q4.gguf" "$tmp/q4k_scale.gguf" >"$tmp/t.txt" 2>&1 || rc=$?
[ $rc -eq 1 ] || fail "text mode exit $rc"
grep -q "^first divergence: layer 1, stage k, tensor blk.1.attn_k.weight" "$tmp/t.txt" || fail "text: first divergence line"
grep -q "^verdict: divergence" "$tmp/t.txt" || fail "text: verdict"
grep -q "more rows (--all shows them)" "$tmp/t.txt" || fail "text: table not cut at the divergence"
if grep -q $'\033' "$tmp/t.txt"; then fail "escape codes in piped output"; fi

# Bad input and usage.
rc=0; "$apr" compare-inference "$base" "$tmp/missing.gguf" >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "missing file: exit $rc, expected 3"
printf 'not a model' >"$tmp/junk.gguf"
rc=0; "$apr" compare-inference "$base" "$tmp/junk.gguf" >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "junk file: exit $rc, expected 3"
rc=0; "$apr" compare-inference --against "$tmp/junk.gguf" "$base" >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "junk trace: exit $rc, expected 3"
rc=0; "$apr" compare-inference "$base" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "one model: exit $rc, expected 2"
rc=0; "$apr" compare-inference --stage-tolerance nope=1 "$base" "$base" >/dev/null 2>&1 || rc=$?
[ $rc -eq 2 ] || fail "bad stage name: exit $rc, expected 2"
# --stage-tolerance loosens one stage: zero_eps passes attn_norm with a limit of 1
compare 1 "$tmp/st.json" --stage-tolerance attn_norm=1 "$base" "$tmp/zero_eps.gguf"
python3 -c "
import json; f = json.load(open('$tmp/st.json'))['first_divergence']
assert f['stage'] != 'attn_norm', f"
echo "compare_inference: ok"
