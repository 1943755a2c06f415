#!/usr/bin/env bash
# The engine against llama.cpp itself on the same GGUF files: `apr quantize` writes the fixtures
# as GGUF of several types; tests/oracle/llama_engine.c runs llama.cpp's libllama (the pinned
# build of scripts/build-llama-oracle: F32 KV cache, no flash attention) on the four fixture
# prompts with a 16-token greedy continuation and writes every position's logits; then
# build/tests/engine_logits runs Rosetta's fast path on llama.cpp's own sequences (teacher
# forcing) and compares: top-1 agreement, mean KL divergence (llama.cpp || Rosetta), and the
# greedy continuations. The figures are printed for every file.
#
# Gates (docs/engine.md, "Against llama.cpp"):
#   f32, f16    the same greedy continuation for every prompt, top-1 >= 99 %, mean KL < 1e-4
#   quantized   mean KL < 0.01; top-1 >= 95 % over the positions where llama.cpp's top two
#               logits are at least 0.05 apart (near-ties left out)
# The fixtures are random tiny models with flat next-token distributions: 8-bit activation
# quantization turns ulp-level differences of summation order into different roundings, so two
# builds of llama.cpp itself (this one, AVX2, and a -march=native AVX-512 one) disagree on 0-3 %
# of the top-1 tokens and on 1 of 4 greedy continuations for some quantized files. The >= 99 %
# top-1 and identical-greedy gates for quantized weights are applied on the real model
# (tests/real/engine.sh), whose distributions are peaked.
#
# SKIP (77) when the oracle cannot be built, unless ROSETTA_ORACLE_REQUIRED=1 (CI); under
# make test-valgrind; with ROSETTA_SKIP_LLAMA_ORACLE=1.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"
if [ "${ROSETTA_SKIP_LLAMA_ORACLE:-0}" = 1 ]; then
  echo "SKIP: ROSETTA_SKIP_LLAMA_ORACLE=1: the engine was not compared with llama.cpp" >&2
  exit 77
fi
if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  echo "SKIP: under make test-valgrind the llama.cpp comparison is not repeated" >&2
  exit 77
fi
T="$TEST_TMP/engine_llama_oracle"
rm -rf "$T"
mkdir -p "$T"

# shellcheck source=tests/oracle/oracle_build.sh
. "$ROSETTA_ROOT/tests/oracle/oracle_build.sh"
oracle_install engine_llama_oracle llama
install=$oracle_dir
harness="$ROSETTA_BUILD/oracle/llama/llama_engine"
src="$ROSETTA_ROOT/tests/oracle/llama_engine.c"
if [ ! -x "$harness" ] || [ "$src" -nt "$harness" ] || [ "$install/VERSION" -nt "$harness" ]; then
  cc -std=c11 -O1 -Wall -Wextra -Werror -I"$install/include" "$src" -o "$harness.tmp.$$" \
    -L"$install/lib" -lllama -lggml -lggml-base -lm -Wl,-rpath,"$install/lib"
  mv "$harness.tmp.$$" "$harness"
fi
helper="$ROSETTA_BUILD/tests/engine_logits"

failures=0
check() { # FIXTURE TYPE
  local fx=$1 type=$2 gguf="$T/$1.$2.gguf"
  "$APR_BIN/apr-quantize" -q "$ROSETTA_ROOT/fixtures/$fx" "$gguf" "$type" >/dev/null
  "$harness" "$gguf" --ids-file "$T/$fx.ids" --greedy 16 --logits "$T/llama.bin" >"$T/llama.jsonl"
  local summary
  summary=$("$helper" "$gguf" --ids-file "$T/$fx.ids" --greedy 16 --teacher "$T/llama.jsonl" \
    --against "$T/llama.bin" --margin 0.05 | tail -n 1)
  python3 - "$summary" "$fx" "$type" <<'PY' || failures=$((failures + 1))
import json, sys
s, fx, t = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
bad = []
if t in ("f32", "f16"):
    if s["greedy_equal"] != s["prompts"]:
        bad.append(f"greedy differs for {s['prompts'] - s['greedy_equal']} prompts")
    if s["top1"] < 0.99: bad.append(f"top-1 {s['top1']:.4f} < 0.99")
    if s["kl_mean"] >= 1e-4: bad.append(f"mean KL {s['kl_mean']:.3g} >= 1e-4")
else:
    if s["kl_mean"] >= 0.01: bad.append(f"mean KL {s['kl_mean']:.3g} >= 0.01")
    if s["top1_clear"] < 0.95: bad.append(f"top-1 (no near-ties) {s['top1_clear']:.4f} < 0.95")
print(f"{'FAIL' if bad else 'ok  '} {fx} {t}: top-1 {s['top1']:.4f} ({s['top1_clear']:.4f} "
      f"without near-ties), mean KL {s['kl_mean']:.3g}, max KL {s['kl_max']:.3g}, greedy "
      f"identical {s['greedy_equal']}/{s['prompts']} ({s['greedy_ok']} up to a near-tie) "
      f"{'; '.join(bad)}")
sys.exit(1 if bad else 0)
PY
}

for fx in tiny-qwen2 tiny-qwen2-tied tiny-qwen2-odd; do
  python3 - "$ROSETTA_ROOT/fixtures/$fx/reference" >"$T/$fx.ids" <<'PY'
import json, sys
for p in ("plain", "code", "chat", "long"):
    print(",".join(map(str, json.load(open(f"{sys.argv[1]}/{p}.json"))["input_ids"])))
PY
  for type in f32 f16 q8_0 q4_k_m; do
    check "$fx" "$type"
  done
done
for type in q4_0 q5_0 q4_1 q6_k q5_k_m q2_k; do
  check tiny-qwen2 "$type"
done
[ "$failures" -eq 0 ] || { echo "engine_llama_oracle: $failures files failed" >&2; exit 1; }
rm -rf "$T"
