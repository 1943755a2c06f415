#!/usr/bin/env bash
# End-to-end test of apr convert (and rosetta-convert), apr import and apr export on the
# fixtures (docs/convert.md): the six paths between SafeTensors, APR and GGUF with --verify,
# --chain, the stop-the-line cases (every crafted bad model of tests/tools/make_bad_models.py:
# exit 5 naming the rule ids, or 3 for a damaged file, and nothing at the destination),
# provenance and determinism (two runs give the same bytes; --no-provenance gives the bytes of
# the library writers), the one warning for types APR cannot hold, --enforce-provenance, usage
# errors, and SIGKILL at random moments (the destination is absent or a complete earlier output).
# The values, names, config and tokenizer of the round trips are checked independently in
# tests/interop/test_convert_interop.py; llama.cpp loads the GGUF outputs in
# llama_logits_oracle.sh.
set -uo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"

T="$TEST_TMP/convert"
rm -rf "$T"
mkdir -p "$T"
C="$APR_BIN/apr-convert"
FX="$ROSETTA_ROOT/fixtures"
WF="$ROSETTA_BUILD/tests/write_formats"
# Under make test-valgrind every tool runs under memcheck: one fixture, a few bad models of each
# kind, no kill loop (timing-based).
light=0
[ "${ROSETTA_VALGRIND:-0}" = 1 ] && light=1
fail=0
failed() {
  echo "FAIL: $*"
  fail=1
}
# run NAME EXPECTED_RC COMMAND...: stdout in $T/out, stderr in $T/err
run() {
  local name=$1 want=$2
  shift 2
  "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    failed "$name: exit $rc, expected $want; stderr: $(head -c 600 "$T/err")"
    return 1
  fi
  return 0
}
absent() { [ ! -e "$1" ] || failed "$2: $1 exists but the conversion failed"; }
same() { cmp -s "$1" "$2" || failed "$3: $1 and $2 differ"; }

# ---- 1. the six paths, every output compared with its source (--verify) -----------------------
paths_fixtures="tiny-qwen2 tiny-qwen2-tied"
chain_fixtures="tiny-qwen2 tiny-qwen2-tied tiny-qwen2-odd"
if [ "$light" = 1 ]; then
  paths_fixtures=tiny-qwen2
  chain_fixtures=tiny-qwen2-tied
fi
for fx in $paths_fixtures; do
  d="$T/paths-$fx"
  mkdir -p "$d"
  run "$fx st->apr" 0 "$C" --verify "$FX/$fx" -o "$d/m.apr"
  grep -q "verify      26 identical\|verify      27 identical" "$T/out" ||
    failed "$fx st->apr: verify summary: $(cat "$T/out")"
  run "$fx st->gguf" 0 "$C" --verify "$FX/$fx" -o "$d/m.gguf"
  run "$fx apr->gguf" 0 "$C" --verify "$d/m.apr" -o "$d/a.gguf"
  run "$fx apr->hf" 0 "$C" --verify "$d/m.apr" -o "$d/a-hf"
  run "$fx gguf->apr" 0 "$C" --verify "$d/m.gguf" -o "$d/g.apr"
  run "$fx gguf->hf" 0 "$C" --verify "$d/m.gguf" -o "$d/g-hf/"
  run "$fx gguf->safetensors file" 0 "$C" --verify "$d/m.gguf" -o "$d/g.safetensors"
  run "$fx st file->apr" 0 "$C" --verify "$FX/$fx/model.safetensors" -o "$d/f.apr"
  run "$fx apr->apr" 0 "$C" --verify "$d/m.apr" -o "$d/again.apr"
  for f in m.apr a-hf/model.safetensors g.apr g-hf/config.json g-hf/tokenizer.json \
    g.safetensors f.apr; do
    [ -s "$d/$f" ] || failed "$fx: $d/$f was not written"
  done
  # the Hugging Face layout of an export holds the companion files
  for f in config.json generation_config.json tokenizer.json tokenizer_config.json; do
    [ -s "$d/a-hf/$f" ] || failed "$fx apr->hf: no $f"
  done
done
# the names the tools are known by
mkdir -p "$T/rc" "$T/ac" # APR records the file stem as the model name: the same name in two places
run "rosetta-convert" 0 "$APR_BIN/rosetta-convert" "$FX/tiny-qwen2" -o "$T/rc/m.apr"
run "apr convert" 0 "$APR_BIN/apr" convert -q "$FX/tiny-qwen2" -o "$T/ac/m.apr"
same "$T/rc/m.apr" "$T/ac/m.apr" "rosetta-convert and apr convert"
run "apr import" 0 "$APR_BIN/apr" import "$FX/tiny-qwen2" -o "$T/imp.apr"
run "apr export gguf" 0 "$APR_BIN/apr" export "$T/imp.apr" -o "$T/exp.gguf" --verify
run "apr export --format hf" 0 "$APR_BIN/apr-export" --format hf "$T/imp.apr" -o "$T/exp"
[ -s "$T/exp/model.safetensors" ] || failed "apr export --format hf wrote no model.safetensors"
run "apr export quantized" 0 "$APR_BIN/apr-export" --quantize q4_k_m --verify "$T/imp.apr" \
  -o "$T/exp-q4.gguf"
grep -q "within bound" "$T/out" || failed "apr export --quantize: no bounded tensors: $(cat "$T/out")"

# ---- 2. --chain: every step verified, then end to end; JSON output ---------------------------
for fx in $chain_fixtures; do
  run "$fx chain" 0 "$C" --json --chain st,apr,gguf,st "$FX/$fx" -o "$T/chain-$fx" &&
    python3 - "$T/out" "$fx" <<'EOF' || failed "$fx chain: JSON"
import json, sys
r = json.load(open(sys.argv[1]))
steps = r["chain"]
assert [s["format"] for s in steps] == ["apr", "gguf", "hf"], steps
for s in steps:
    assert s["written"] and s["error"] is None, s
    v = s["verify"]
    assert v["violation"] == 0 and v["identical"] + v["exact"] + v["omitted"] > 0, v
    assert s["provenance"]["source_digest"].startswith("xxh3-64:"), s["provenance"]
e = r["end_to_end"]
# F32/BF16 tensors come back bit for bit (norms and biases widened to F32 on the way: exact)
assert e["violation"] == 0 and e["bounded"] == 0, e
EOF
done
run "chain of another source format" 2 "$C" --chain gguf,apr "$FX/tiny-qwen2" -o "$T/chain-bad"
run "chain with one format" 2 "$C" --chain st "$FX/tiny-qwen2" -o "$T/chain-bad"

# ---- 3. stop the line: crafted bad models ---------------------------------------------------
B="$T/bad"
python3 "$ROSETTA_ROOT/tests/tools/make_bad_models.py" "$B" --apr-bin "$APR_BIN" >/dev/null ||
  failed "make_bad_models.py"
python3 - "$B/cases.json" >"$T/cases.txt" <<'EOF'
import json, sys
for c in json.load(open(sys.argv[1])):
    structural = [r for r in c["rules"] if not r.startswith("quality.")]
    if c["warning_only"]:
        want = "0"  # layout.unknown_tensor (names pass through) ... or an unreadable dtype below
    elif structural or c["rules"] == ["quality.nan_inf"]:
        want = "5"
    else:
        want = "0"  # the other quality rules belong to apr validate, not to conversions
    if c["case"].startswith("dequantize"):
        want = "3"  # F8_E4M3: Rosetta cannot read its values, whatever the output
    print(c["case"], c["path"], want, ",".join(c["rules"]))
EOF
n_cases=0
while read -r name path want rules; do
  n_cases=$((n_cases + 1))
  # under memcheck: one model of each rule kind and outcome
  case "$light:$name" in
  1:shape | 1:vocab_size | 1:nan_inf.gguf | 1:unknown_architecture | 1:rope_type.apr | 1:l2 | 1:dequantize | 1:unknown_tensor | 0:*) ;;
  *) continue ;;
  esac
  for ext in apr gguf; do
    out="$B/out-$name.$ext"
    run "bad model $name -> $ext" "$want" "$C" "$path" -o "$out" || continue
    if [ "$want" != 0 ]; then
      absent "$out" "bad model $name"
      if [ "$want" = 5 ]; then
        for r in ${rules//,/ }; do
          grep -q "$r" "$T/err" || failed "bad model $name: stderr does not name $r: $(cat "$T/err")"
        done
      fi
    fi
  done
done <"$T/cases.txt"
[ "$n_cases" -ge 20 ] || failed "only $n_cases bad models"
# a name that spells no role passes through, with a warning naming the rule
run "unknown tensor name" 0 "$C" "$B/unknown_tensor" -o "$B/unknown.gguf" &&
  grep -q "warning: layout.unknown_tensor: model.layers.0.mlp.experts.0.w1" "$T/err" ||
  failed "unknown tensor: no warning: $(cat "$T/err")"
run "unknown tensor kept" 0 "$APR_BIN/apr-tensors" "$B/unknown.gguf"
grep -q "model.layers.0.mlp.experts.0.w1" "$T/out" || failed "unknown tensor: not passed through"
# --skip-contract writes what the contract refuses; --arch names an unknown architecture
run "skip-contract" 0 "$C" --skip-contract "$B/vocab_size" -o "$B/skipped.apr"
run "skip-contract NaN" 0 "$C" --skip-contract "$B/nan_inf" -o "$B/nan.gguf"
run "unknown architecture" 5 "$C" "$B/unknown_architecture" -o "$B/arch.gguf"
run "--arch" 0 "$C" --arch qwen2 --verify "$B/unknown_architecture" -o "$B/arch.gguf"
run "--arch recorded" 0 "$APR_BIN/apr-inspect" "$B/arch.gguf"
grep -q "general.architecture *string *\"qwen2\"" "$T/out" || failed "--arch: not in the GGUF"
grep -q "options *--to gguf --arch qwen2" "$T/out" || failed "--arch: not in the provenance"
# a damaged file: exit 3, nothing written
cp "$T/paths-tiny-qwen2/m.apr" "$B/crc.apr"
printf '\x55' | dd of="$B/crc.apr" bs=1 seek=30000 conv=notrunc 2>/dev/null
run "footer CRC" 3 "$C" "$B/crc.apr" -o "$B/crc.gguf" && absent "$B/crc.gguf" "footer CRC"
grep -q "CRC" "$T/err" || failed "footer CRC: message: $(cat "$T/err")"
head -c 100000 "$T/paths-tiny-qwen2/m.gguf" >"$B/short.gguf"
run "truncated GGUF" 3 "$C" "$B/short.gguf" -o "$B/short.apr" && absent "$B/short.apr" "truncated"
# a failed conversion leaves the previous output as it was
cp "$T/paths-tiny-qwen2/m.apr" "$B/keep.apr"
run "previous output kept" 5 "$C" "$B/shape" -o "$B/keep.apr"
same "$B/keep.apr" "$T/paths-tiny-qwen2/m.apr" "a refused conversion"

# ---- 4. provenance and determinism ------------------------------------------------------------
P="$T/prov"
mkdir -p "$P"
mkdir -p "$P/1" "$P/2" "$P/e1" "$P/e2"
for ext in apr gguf safetensors; do
  "$C" -q "$FX/tiny-qwen2" -o "$P/1/m.$ext" >/dev/null &&
    "$C" -q "$FX/tiny-qwen2" -o "$P/2/m.$ext" >/dev/null ||
    failed "determinism: $ext conversion failed"
  same "$P/1/m.$ext" "$P/2/m.$ext" "converting twice ($ext)"
  run "inspect $ext" 0 "$APR_BIN/apr-inspect" "$P/1/m.$ext"
  grep -q "source_digest *xxh3-64:[0-9a-f]\{16\}" "$T/out" ||
    failed "apr inspect shows no provenance in the $ext output"
  grep -q "created" "$T/out" && failed "a time recorded without SOURCE_DATE_EPOCH ($ext)"
  SOURCE_DATE_EPOCH=1718496000 "$C" -q "$FX/tiny-qwen2" -o "$P/e1/m.$ext" >/dev/null
  SOURCE_DATE_EPOCH=1718496000 "$C" -q "$FX/tiny-qwen2" -o "$P/e2/m.$ext" >/dev/null
  same "$P/e1/m.$ext" "$P/e2/m.$ext" "SOURCE_DATE_EPOCH twice ($ext)"
  "$APR_BIN/apr-inspect" "$P/e1/m.$ext" | grep -q "created *2024-06-16T00:00:00Z" ||
    failed "SOURCE_DATE_EPOCH not recorded ($ext)"
done
run "json provenance" 0 "$APR_BIN/apr-inspect" --json "$P/1/m.gguf"
python3 -c 'import json,sys; p=json.load(open(sys.argv[1]))["provenance"]; assert p["source"]=="tiny-qwen2" and p["source_format"]=="safetensors" and p["options"]=="--to gguf", p' \
  "$T/out" || failed "apr inspect --json: provenance"
# --no-provenance: the bytes of the library writers (the reference writers' layout)
if [ -x "$WF" ]; then
  "$WF" "$FX/tiny-qwen2" --apr "$P/ref.apr" --gguf "$P/ref.gguf" || failed "write_formats"
  # aprender records the output's file stem as the model name: same stem for both files
  mkdir -p "$P/np" && "$C" -q --no-provenance "$FX/tiny-qwen2" -o "$P/np/ref.apr"
  same "$P/ref.apr" "$P/np/ref.apr" "--no-provenance APR"
  "$C" -q --no-provenance "$FX/tiny-qwen2" -o "$P/np/ref.gguf"
  same "$P/ref.gguf" "$P/np/ref.gguf" "--no-provenance GGUF"
  "$WF" "$P/ref.gguf" --apr "$P/g.apr" && "$C" -q --no-provenance "$P/ref.gguf" -o "$P/np/g.apr"
  same "$P/g.apr" "$P/np/g.apr" "--no-provenance GGUF -> APR"
  "$APR_BIN/apr-inspect" "$P/np/ref.gguf" | grep -q rosetta && failed "--no-provenance wrote rosetta keys"
else
  failed "$WF is not built"
fi

# ---- 5. what a format cannot hold: one warning; --requantize; --enforce-provenance -------------
Q="$T/q"
mkdir -p "$Q"
run "q8_0 gguf" 0 "$C" --quantize q8_0 "$FX/tiny-qwen2" -o "$Q/q8.gguf"
run "gguf q8_0 -> apr" 0 "$APR_BIN/apr-import" --verify "$Q/q8.gguf" -o "$Q/q8.apr"
[ "$(grep -c warning "$T/err")" = 1 ] || failed "Q8_0 -> APR: expected one warning: $(cat "$T/err")"
grep -q "warning: [0-9]* tensor(s) of type Q8_0, which apr cannot hold, were dequantized to F32" "$T/err" ||
  failed "Q8_0 -> APR: warning text: $(cat "$T/err")"
n_q8=$(sed -n 's/.*not held *\([0-9]*\) tensor(s) of Q8_0.*/\1/p' "$T/out")
[ -n "$n_q8" ] && grep -q "verify .* $n_q8 exact" "$T/out" || failed "Q8_0 -> APR: dequantized values not exact: $(cat "$T/out")"
run "quiet" 0 "$APR_BIN/apr-import" -q "$Q/q8.gguf" -o "$Q/q8-quiet.apr"
[ ! -s "$T/err" ] || failed "-q: stderr not empty: $(cat "$T/err")"
run "requantize q6_k" 0 "$APR_BIN/apr-import" --requantize q6_k --verify "$Q/q8.gguf" -o "$Q/q6.apr"
grep -q "requantized to Q6_K" "$T/err" || failed "--requantize: warning: $(cat "$T/err")"
run "requantize to a type APR cannot hold" 2 "$APR_BIN/apr-import" --requantize q5_0 "$Q/q8.gguf" -o "$Q/x.apr"
absent "$Q/x.apr" "--requantize q5_0"
run "enforce-provenance gguf" 5 "$APR_BIN/apr-import" --enforce-provenance "$Q/q8.gguf" -o "$Q/e.apr"
absent "$Q/e.apr" "--enforce-provenance"
run "enforce-provenance st" 0 "$APR_BIN/apr-import" --enforce-provenance "$FX/tiny-qwen2" -o "$Q/e.apr"
run "quantized to SafeTensors" 0 "$C" "$Q/q8.gguf" -o "$Q/q8-hf"
grep -q "dequantized to F32" "$T/err" || failed "Q8_0 -> SafeTensors: no warning"

# ---- 6. usage errors ---------------------------------------------------------------------------
run "no output" 2 "$C" "$FX/tiny-qwen2"
run "no source" 2 "$C" -o "$T/x.apr"
run "unknown extension" 2 "$C" "$FX/tiny-qwen2" -o "$T/x.bin"
run "bad --to" 2 "$C" --to onnx "$FX/tiny-qwen2" -o "$T/x.apr"
run "bad --quantize" 2 "$C" --quantize q9 "$FX/tiny-qwen2" -o "$T/x.gguf"
run "import --to" 2 "$APR_BIN/apr-import" --to gguf "$FX/tiny-qwen2" -o "$T/x.apr"
run "export of a non-APR" 2 "$APR_BIN/apr-export" "$FX/tiny-qwen2" -o "$T/x.gguf"
run "output is the source" 2 "$C" "$FX/tiny-qwen2" -o "$FX/tiny-qwen2"
run "missing source" 3 "$C" "$T/none.gguf" -o "$T/x.apr"
run "hf dir with other files" 4 "$C" "$FX/tiny-qwen2" -o "$ROSETTA_ROOT/tests"
absent "$T/x.apr" "usage errors"

# ---- 7. SIGKILL at random moments: the destination is absent or a complete earlier output -----
if [ "$light" = 0 ]; then
  K="$T/kill"
  mkdir -p "$K/ref-a" "$K/ref-b"
  RANDOM=20240616
  "$C" -q --quantize f32 "$FX/tiny-qwen2" -o "$K/a.apr" &&
    "$C" -q --quantize f32 "$FX/tiny-qwen2-tied" -o "$K/b.apr" &&
    "$C" -q "$FX/tiny-qwen2" -o "$K/a-hf" && "$C" -q "$FX/tiny-qwen2-tied" -o "$K/b-hf" ||
    failed "kill: reference outputs"
  "$C" -q --verify "$K/a.apr" -o "$K/ref-a/dst.apr" && "$C" -q --verify "$K/b.apr" -o "$K/ref-b/dst.apr" ||
    failed "kill: reference APR outputs"
  digest() { (cd "$1" && sha256sum -- * | sha256sum); }
  ref_a=$(digest "$K/a-hf")
  ref_b=$(digest "$K/b-hf")
  finished=0
  interrupted=0
  for i in $(seq 1 16); do
    if [ $((i % 2)) = 0 ]; then src=$K/a.apr; else src=$K/b.apr; fi
    "$C" -q --verify "$src" -o "$K/dst.apr" >/dev/null &
    pid=$!
    sleep "0.$(printf %03d $((RANDOM % 90)))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ $((i % 2)) = 0 ]; then want=$K/ref-a/dst.apr; else want=$K/ref-b/dst.apr; fi
    if cmp -s "$K/dst.apr" "$want"; then
      finished=$((finished + 1))
    elif [ ! -e "$K/dst.apr" ] || cmp -s "$K/dst.apr" "$K/ref-a/dst.apr" ||
      cmp -s "$K/dst.apr" "$K/ref-b/dst.apr"; then
      interrupted=$((interrupted + 1))
    else
      failed "kill $i: $K/dst.apr is neither complete output"
    fi
    if [ $((i % 2)) = 0 ]; then src=$FX/tiny-qwen2; else src=$FX/tiny-qwen2-tied; fi
    "$C" -q "$src" -o "$K/dst-hf" >/dev/null &
    pid=$!
    sleep "0.$(printf %03d $((RANDOM % 90)))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    if [ -e "$K/dst-hf" ]; then
      d=$(digest "$K/dst-hf")
      [ "$d" = "$ref_a" ] || [ "$d" = "$ref_b" ] || failed "kill $i: $K/dst-hf is no complete output"
    fi
  done
  echo "kill -9: $interrupted APR conversions interrupted, $finished finished"
fi

if [ "$fail" -ne 0 ]; then
  echo "convert: FAILED"
  exit 1
fi
echo "convert: ok ($n_cases bad models)"
