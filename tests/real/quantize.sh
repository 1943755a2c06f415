#!/usr/bin/env bash
# Real weights: `apr quantize` against llama.cpp's llama_model_quantize() (the pinned library,
# tests/oracle/llama_quantize.c) on the genuine Qwen2.5-Coder-0.5B Q4_K_M GGUF. Each pair of
# outputs must be the same file, byte for byte:
#   1. the shipped file requantized to Q8_0 (--allow-requantize)
#   2. the shipped file dequantized to F32 (--allow-requantize; 2.5 GB)
#   3. that F32 file quantized to Q4_K_M (the Q5_0 / Q8_0 fallbacks of 896-wide rows)
#   4. the Q8_0 file requantized to Q4_K_M
set -euo pipefail
. "$ROSETTA_ROOT/tests/real/lib.sh"
real_model quantize

. "$ROSETTA_ROOT/tests/oracle/oracle_build.sh"
oracle_install real/quantize llama
install=$oracle_dir
harness="$ROSETTA_BUILD/oracle/llama/llama_quantize"
src="$ROSETTA_ROOT/tests/oracle/llama_quantize.c"
if [ ! -x "$harness" ] || [ "$src" -nt "$harness" ] || [ "$install/VERSION" -nt "$harness" ]; then
  cc -std=c11 -O1 -Wall -Wextra -Werror -I"$install/include" "$src" -o "$harness.tmp" \
    -L"$install/lib" -lllama -lggml -lggml-base -lm -Wl,-rpath,"$install/lib"
  mv "$harness.tmp" "$harness"
fi

# same NAME IN MIX [flags...]: both tools write $T/NAME.{apr,llama}.gguf, which must be equal.
same() {
  local name=$1 in=$2 mix=$3
  shift 3
  local t0 t1 t2
  t0=$(date +%s.%N)
  "$APR_BIN/apr-quantize" -q "$@" "$in" "$T/$name.apr.gguf" "$mix" >/dev/null
  t1=$(date +%s.%N)
  "$harness" "$@" "$in" "$T/$name.llama.gguf" "$mix" >/dev/null
  t2=$(date +%s.%N)
  if ! cmp -s "$T/$name.apr.gguf" "$T/$name.llama.gguf"; then
    cmp "$T/$name.apr.gguf" "$T/$name.llama.gguf" >&2 || true
    fail "$name: apr quantize and llama_model_quantize differ ($mix from $(basename "$in"))"
  fi
  awk -v n="$name" -v b="$(stat -c %s "$T/$name.apr.gguf")" -v a="$t0" -v m="$t1" -v e="$t2" \
    'BEGIN { printf "real/quantize: %-8s %s bytes identical (apr %.1f s, llama.cpp %.1f s)\n", n, b, m - a, e - m }'
  rm -f "$T/$name.llama.gguf"
}

same q8_0 "$MODEL" q8_0 --allow-requantize
same f32 "$MODEL" f32 --allow-requantize
same q4_k_m "$T/f32.apr.gguf" q4_k_m
rm -f "$T/f32.apr.gguf"
same q8-q4km "$T/q8_0.apr.gguf" q4_k_m --allow-requantize
