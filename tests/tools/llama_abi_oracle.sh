#!/usr/bin/env bash
# ABI test of Rosetta's declarations of llama.cpp's C API (libinfer/src/llama_abi.h, used by
# apr compare-inference --engine-b llama through dlopen): tests/oracle/llama_abi.c is compiled
# against the pinned llama.h of the oracle install (tests/oracle/oracle_build.sh) and compares
# the size and offset of every struct field Rosetta uses, the enum values it relies on and the
# type of every function it looks up.
# SKIP (77) when the oracle cannot be built unless ROSETTA_ORACLE_REQUIRED=1 (CI: FAIL), and under
# make test-valgrind (no apr tool runs here).
set -euo pipefail
: "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"
if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  echo "SKIP: the ABI test runs no apr tool (nothing for memcheck)" >&2
  exit 77
fi
# shellcheck source=tests/oracle/oracle_build.sh
. "$ROSETTA_ROOT/tests/oracle/oracle_build.sh"
oracle_install llama_abi_oracle llama
install=$oracle_dir
T="$TEST_TMP/llama_abi_oracle"
rm -rf "$T" && mkdir -p "$T"
cc -std=c11 -O1 -Wall -Wextra -Werror -I"$install/include" -I"$ROSETTA_ROOT/libinfer/src" \
  "$ROSETTA_ROOT/tests/oracle/llama_abi.c" -o "$T/llama_abi" -L"$install/lib" -lllama -lggml \
  -lggml-base -Wl,-rpath,"$install/lib"
"$T/llama_abi" >"$T/out.txt" || { grep -v '^ok' "$T/out.txt" >&2; echo "FAIL: llama_abi.h differs from the pinned llama.h" >&2; exit 1; }
# every field Rosetta declares was compared (the list cannot silently shrink)
n=$(grep -c '^ok ' "$T/out.txt")
[ "$n" -ge 150 ] || { echo "FAIL: only $n ABI checks ran" >&2; exit 1; }
tail -n 1 "$T/out.txt"
