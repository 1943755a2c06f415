#!/usr/bin/env bash
# Oracle test of the scalar reference quantizers: builds llama.cpp's ggml-base from the pinned
# llama-cpp-python sdist (scripts/build-ggml-oracle, cached in $ROSETTA_BUILD/oracle), compiles
# tests/oracle/quant_oracle.c against it and against Rosetta's kernels library, and runs it.
# Byte-identical quantization and bit-identical dequantization on every type, or the test fails.
# SKIP (77) only when the sdist can be neither found nor downloaded; set
# ROSETTA_ORACLE_REQUIRED=1 (CI does) to turn that into a failure.
# ROSETTA_ORACLE_SCALE multiplies the number of blocks (default 1).
set -euo pipefail

root=${ROSETTA_ROOT:?ROSETTA_ROOT is not set}
build=${ROSETTA_BUILD:?ROSETTA_BUILD is not set}
tmp=${TEST_TMP:-$build/test-tmp}/quant_oracle
mkdir -p "$tmp"

# shellcheck source=tests/oracle/oracle_build.sh
. "$root/tests/oracle/oracle_build.sh"
oracle_install quant_oracle ggml
install_dir=$oracle_dir

kernels_lib=$(find "$build/kernels" -maxdepth 2 -name 'librosetta_kernels_cpu.a' | head -n 1)
if [ -z "$kernels_lib" ]; then
  echo "quant_oracle: FAIL: librosetta_kernels_cpu.a not found under $build/kernels (build first)" >&2
  exit 1
fi

# Same warning and floating-point flags as the project; sanitizers when the build uses them.
flags=(-std=c11 -O2 -Wall -Wextra -Werror -fno-fast-math -ffp-contract=off -D_GNU_SOURCE)
if grep -q '^ROSETTA_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  flags+=(-fsanitize=address,undefined -fno-sanitize-recover=all)
fi
cc=${CC:-cc}
"$cc" "${flags[@]}" -I"$root/kernels" -isystem "$install_dir/include" \
  "$root/tests/oracle/quant_oracle.c" "$kernels_lib" \
  -L"$install_dir/lib" -lggml-base -Wl,-rpath,"$install_dir/lib" -lm -lpthread \
  -o "$tmp/quant_oracle"

# The 2-D tensors of the tiny-qwen2 fixture (BF16 widened exactly to F32, as llama-quantize sees
# them) as extra input: records of u32 rows, u32 cols, then the f32 values.
real_args=()
fixture="$root/fixtures/tiny-qwen2/model.safetensors"
if [ -f "$fixture" ]; then
  python3 - "$fixture" "$tmp/tiny-qwen2.f32" <<'PY'
import json, struct, sys
from array import array
src, dst = sys.argv[1], sys.argv[2]
with open(src, "rb") as f:
    blob = f.read()
(hlen,) = struct.unpack_from("<Q", blob, 0)
header = json.loads(blob[8:8 + hlen])
base = 8 + hlen
with open(dst, "wb") as out:
    for name in sorted(k for k in header if k != "__metadata__"):
        t = header[name]
        if t["dtype"] != "BF16" or len(t["shape"]) != 2:
            continue
        rows, cols = t["shape"]
        start, end = t["data_offsets"]
        halves = array("H", blob[base + start:base + end])
        if sys.byteorder != "little":
            halves.byteswap()
        words = array("I", (h << 16 for h in halves))
        if sys.byteorder != "little":
            words.byteswap()
        out.write(struct.pack("<II", rows, cols))
        out.write(words.tobytes())
PY
  real_args=(--real "$tmp/tiny-qwen2.f32")
else
  echo "quant_oracle: note: $fixture not found, real-tensor input skipped" >&2
fi

"$tmp/quant_oracle" --scale "${ROSETTA_ORACLE_SCALE:-1}" "${real_args[@]}"
