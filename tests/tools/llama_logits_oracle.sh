#!/usr/bin/env bash
# Oracle test of the GGUF files Rosetta writes: llama.cpp's own libllama (built from the pinned
# llama-cpp-python sdist by scripts/build-llama-oracle) loads, for the three fixtures, the GGUFs
# of `apr convert` (the SafeTensors types kept, provenance keys and all; --quantize f32, q8_0,
# q4_k_m; and the end of `--chain st,apr,gguf`) and of `apr quantize ... f16` (apr convert and
# apr quantize run the same rf_convert; --no-provenance output equals the library writers'
# bytes, tests/tools/convert.sh), and tests/oracle/llama_logits.c checks that it is the fixture's
# model:
# hyperparameters against config.json, llama_tokenize against the fixture's token ids,
# last-position logits against transformers' float32 logits, 16 greedy tokens, and
# llama_chat_apply_template with the GGUF's chat template against the chat prompt.
#
# Logit bounds (max |llama - transformers| over the 1024 logits, relative to max |logit|), with
# an F32 KV cache and flash attention off unless said otherwise; measured worst cases over the
# 3 fixtures x 4 prompts are in docs/formats/gguf.md:
#   f32   1e-4  the same float32 weights: only summation order differs (measured <= 4.2e-6)
#   f16   1e-2  weights exact but for |w| < 6.1e-5 (F16 subnormals lose bits); ggml rounds the
#               activations to F16 for its dot products (measured <= 2.6e-3)
#   bf16  4e-2  weights bit-identical to the source; ggml rounds the activations to BF16
#               (8 significant bits; measured <= 1.5e-2); the same for the library's copies
#   q8_0  0.2   weights and activations rounded to 8-bit blocks (measured <= 8.5e-2)
#   q4_k_m 0.75 4- to 6-bit weights, 8-bit activations: the tiny random models amplify the error
#               (measured <= 0.55); what this run proves is the load, the hyperparameters, the
#               tokenizer and the chat template (the bytes equal llama-quantize's: quantize_oracle)
#   f32 with llama.cpp's defaults (F16 KV cache, flash attention auto): 1e-2 (measured <= 2.6e-3)
# The argmax must agree everywhere (unless the reference's top two are closer than twice the
# measured error); greedy tokens must be equal for f32, divergences are reported for the rest.
#
# SKIP (77) when the oracle cannot be built (no sdist reachable) unless ROSETTA_ORACLE_REQUIRED=1
# (CI), under make test-valgrind (tools/quantize runs apr quantize there), or with
# ROSETTA_SKIP_LLAMA_ORACLE=1. Needs a C compiler and libcjson (a Rosetta build dependency).
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"

if [ "${ROSETTA_SKIP_LLAMA_ORACLE:-0}" = 1 ]; then
  echo "SKIP: ROSETTA_SKIP_LLAMA_ORACLE=1: llama.cpp did not load Rosetta's GGUF files" >&2
  exit 77
fi
if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  # only `apr quantize` to float types would run under memcheck here, which tools/quantize covers
  echo "SKIP: under make test-valgrind the llama.cpp load test is not repeated (tools/quantize covers apr quantize)" >&2
  exit 77
fi

T="$TEST_TMP/llama_logits_oracle"
rm -rf "$T"
mkdir -p "$T"

# shellcheck source=tests/oracle/oracle_build.sh
. "$ROSETTA_ROOT/tests/oracle/oracle_build.sh"
oracle_install llama_logits_oracle llama
install=$oracle_dir
harness="$ROSETTA_BUILD/oracle/llama/llama_logits"
src="$ROSETTA_ROOT/tests/oracle/llama_logits.c"
if [ ! -x "$harness" ] || [ "$src" -nt "$harness" ] || [ "$install/VERSION" -nt "$harness" ]; then
  # shellcheck disable=SC2046 # pkg-config prints several words
  cc -std=c11 -O1 -Wall -Wextra -Werror -I"$install/include" $(pkg-config --cflags libcjson) \
    "$src" -o "$harness.tmp.$$" -L"$install/lib" -lllama -lggml -lggml-base \
    $(pkg-config --libs libcjson) -lm -Wl,-rpath,"$install/lib"
  mv "$harness.tmp.$$" "$harness"
fi

failures=0
runs=0
# check FIXTURE TYPE [harness options...]: the fixture's GGUF of TYPE must be its model
check() {
  local fx=$1 type=$2 label=$3
  shift 3
  local gguf="$T/$fx.$type.gguf"
  runs=$((runs + 1))
  local made=0
  case "$type" in
  convert-*)
    # apr convert, provenance keys and all: keep the SafeTensors types (bf16) or quantize
    local mix=${type#convert-}
    if [ "$mix" = bf16 ]; then
      "$APR_BIN/apr-convert" -q "$ROSETTA_ROOT/fixtures/$fx" -o "$gguf" >/dev/null 2>"$T/apr.err"
    else
      "$APR_BIN/apr-convert" -q --threads 2 --quantize "$mix" "$ROSETTA_ROOT/fixtures/$fx" \
        -o "$gguf" >/dev/null 2>"$T/apr.err"
    fi
    made=$?
    ;;
  chain)
    # SafeTensors -> APR -> GGUF with apr convert --chain (every step verified)
    "$APR_BIN/apr-convert" -q --chain st,apr,gguf "$ROSETTA_ROOT/fixtures/$fx" \
      -o "$T/chain-$fx" >/dev/null 2>"$T/apr.err" && cp "$T/chain-$fx/$fx.gguf" "$gguf"
    made=$?
    ;;
  *)
    "$APR_BIN/apr-quantize" -q --threads 2 "$ROSETTA_ROOT/fixtures/$fx" "$gguf" "$type" \
      >/dev/null 2>"$T/apr.err"
    made=$?
    ;;
  esac
  if [ "$made" -ne 0 ]; then
    echo "FAIL $label: writing the GGUF failed:"
    cat "$T/apr.err"
    failures=$((failures + 1))
    return
  fi
  if ! "$harness" --threads 1 "$@" "$gguf" "$ROSETTA_ROOT/fixtures/$fx" "$label"; then
    failures=$((failures + 1))
  fi
}

for fx in tiny-qwen2 tiny-qwen2-tied tiny-qwen2-odd; do
  check "$fx" convert-f32 "$fx f32 (apr convert --quantize f32)" --max-rel 1e-4 --greedy exact
  check "$fx" f16 "$fx f16 (apr quantize)" --max-rel 1e-2 --greedy report
  check "$fx" convert-bf16 "$fx bf16 (apr convert, types kept)" --max-rel 4e-2 --greedy report
  check "$fx" convert-q8_0 "$fx q8_0 (apr convert --quantize q8_0)" --max-rel 0.2 --greedy report
  check "$fx" convert-q4_k_m "$fx q4_k_m (apr convert --quantize q4_k_m)" --max-rel 0.75 \
    --greedy report
  check "$fx" chain "$fx bf16 (apr convert --chain st,apr,gguf)" --max-rel 4e-2 --greedy report
  check "$fx" convert-f32 "$fx f32 (llama.cpp defaults: F16 KV cache, flash attention auto)" \
    --kv f16 --flash-attn auto --max-rel 1e-2 --greedy report
done

echo "llama_logits_oracle: $runs runs (4 prompts each), $failures failed"
[ "$failures" -eq 0 ]
