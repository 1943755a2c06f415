#!/usr/bin/env bash
# Oracle test of the matmul kernels: builds (or finds cached) llama.cpp's libggml-cpu from the
# pinned llama-cpp-python sdist (scripts/build-llama-oracle), compiles tests/oracle/matmul_oracle.c
# against it and Rosetta's kernels library, and runs it: activation blocks byte-identical to
# ggml's reference quantizers, dot products bit-identical to ggml's generic vec_dot for Q4_0 Q4_1
# Q5_0 Q5_1 Q8_0 Q2_K and within 1e-6 of sum|w x| for the other K-quants, within documented
# bounds of ggml's AVX2 vec_dot for every type (see the program's header).
# SKIP (77) when the oracle cannot be built unless ROSETTA_ORACLE_REQUIRED=1 (CI); SKIP under
# make test-valgrind (the kernels' unit tests run there).
set -euo pipefail
root=${ROSETTA_ROOT:?ROSETTA_ROOT is not set}
build=${ROSETTA_BUILD:?ROSETTA_BUILD is not set}
tmp=${TEST_TMP:-$build/test-tmp}/matmul_oracle
mkdir -p "$tmp"

if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  echo "SKIP: under make test-valgrind the ggml comparison is not repeated" >&2
  exit 77
fi

# shellcheck source=tests/oracle/oracle_build.sh
. "$root/tests/oracle/oracle_build.sh"
oracle_install matmul_oracle llama
install_dir=$oracle_dir

kernels_lib=$(find "$build/kernels" -maxdepth 2 -name 'librosetta_kernels_cpu.a' | head -n 1)
if [ -z "$kernels_lib" ]; then
  echo "matmul_oracle: FAIL: librosetta_kernels_cpu.a not found under $build/kernels (build first)" >&2
  exit 1
fi

flags=(-std=c11 -O2 -Wall -Wextra -Werror -fno-fast-math -ffp-contract=off -D_GNU_SOURCE)
if grep -q '^ROSETTA_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
  flags+=(-fsanitize=address,undefined -fno-sanitize-recover=all)
fi
"${CC:-cc}" "${flags[@]}" -I"$root/kernels" -isystem "$install_dir/include" \
  "$root/tests/oracle/matmul_oracle.c" "$kernels_lib" \
  -L"$install_dir/lib" -lggml-cpu -lggml-base -Wl,-rpath,"$install_dir/lib" -lm -lpthread \
  -o "$tmp/matmul_oracle"
"$tmp/matmul_oracle"
