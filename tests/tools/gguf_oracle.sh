#!/usr/bin/env bash
# Differential test of Rosetta's strict GGUF reader against llama.cpp's own reader (gguf.cpp in
# ggml-base, built from the pinned llama-cpp-python sdist by scripts/build-ggml-oracle, cached in
# $ROSETTA_BUILD/oracle). Compiles tests/oracle/gguf_oracle.c against librosetta-format and
# libggml-base and runs it on: the fixtures written as GGUF by the library (write_formats), every
# file in tests/data/bad/gguf/, files built by the harness, and a fixed-seed mutation corpus.
# Accept/reject decisions, tensors and metadata keys must agree, except for the commented
# allowlist rules in the harness (docs/formats/gguf.md lists them).
# SKIP (77) only when the oracle cannot be built; ROSETTA_ORACLE_REQUIRED=1 (CI) makes that a
# failure.
set -euo pipefail

root=${ROSETTA_ROOT:?ROSETTA_ROOT is not set}
build=${ROSETTA_BUILD:?ROSETTA_BUILD is not set}
tmp=${TEST_TMP:-$build/test-tmp}/gguf_oracle
rm -rf "$tmp"
mkdir -p "$tmp"

# shellcheck source=tests/oracle/oracle_build.sh
. "$root/tests/oracle/oracle_build.sh"
oracle_install gguf_oracle ggml
install_dir=$oracle_dir

lib_dir="$build/libformat"
if [ ! -e "$lib_dir/librosetta-format.so" ]; then
  echo "gguf_oracle: FAIL: $lib_dir/librosetta-format.so not found (build first)" >&2
  exit 1
fi

flags=(-std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE)
if grep -q '^ROSETTA_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  flags+=(-fsanitize=address,undefined -fno-sanitize-recover=all)
fi
cc=${CC:-cc}
"$cc" "${flags[@]}" -I"$root/libformat/include" -I"$build/libformat/include" \
  -isystem "$install_dir/include" "$root/tests/oracle/gguf_oracle.c" \
  -L"$lib_dir" -lrosetta-format -Wl,-rpath,"$lib_dir" \
  -L"$install_dir/lib" -lggml-base -Wl,-rpath,"$install_dir/lib" -lm -lpthread \
  -o "$tmp/gguf_oracle"

# Valid inputs: the fixtures written to GGUF by Rosetta's writer.
inputs=()
wf="$build/tests/write_formats"
for fx in "$root"/fixtures/tiny-qwen2 "$root"/fixtures/tiny-qwen2-tied "$root"/fixtures/tiny-qwen2-odd; do
  [ -d "$fx" ] || continue
  if [ ! -x "$wf" ]; then
    echo "gguf_oracle: FAIL: $wf not built" >&2
    exit 1
  fi
  out="$tmp/$(basename "$fx").gguf"
  "$wf" "$fx" --gguf "$out"
  inputs+=("$out")
done
[ ${#inputs[@]} -gt 0 ] || echo "gguf_oracle: note: no fixtures found, only built and bad inputs" >&2

# The bad-input catalogue (files with a .expect sidecar are not required to be accepted).
for f in "$root"/tests/data/bad/gguf/*.gguf; do
  inputs+=("$f")
done

# Disagreeing inputs are kept as $tmp/fail-N.gguf; on success the scratch files go.
"$tmp/gguf_oracle" --tmp "$tmp" ${GGUF_ORACLE_VERBOSE:+--verbose} "${inputs[@]}"
rm -f "$tmp"/*.gguf
