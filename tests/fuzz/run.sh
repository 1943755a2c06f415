#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for N seconds each, one after the other (one core),
# and prints executions per target and in total. Exits 1 if any target found a crash, a leak,
# a timeout or an out-of-memory; the reproducer is in <build>/fuzz-artifacts/<target>/.
#
# usage: tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]   (default: every <build>/fuzz/fuzz_*)
# The working corpus (<build>/fuzz-corpus/<target>/) grows across runs; seeds come from
# tests/fuzz/corpus/<target>/ and the directories named by the target's "fuzz-config:" line.
# Each run appends "date target seconds executions status" to <build>/fuzz-stats.tsv.
# FUZZ_SEED=N fixes libFuzzer's random seed: from the same corpus the run then tries the same
# inputs in the same order (CI uses this, so that its verdict is reproducible; exploration runs
# leave it unset and get a new seed each time).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
build=$(cd "$build" && pwd)

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for bin in "$build"/fuzz/fuzz_*; do
    [ -x "$bin" ] && targets+=("$(basename "$bin")")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "run.sh: no fuzz targets in $build/fuzz (configure with ROSETTA_FUZZ=ON)" >&2
  exit 2
fi

# Resource limits make unbounded allocation a finding: no input of at most 128 KiB may make
# a reader allocate 512 MiB at once or grow past 2 GiB.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

total=0
failed=()
[ -n "${FUZZ_SEED:-}" ] && echo "seed $FUZZ_SEED (FUZZ_SEED)"
printf '%-26s %8s %14s %s\n' target seconds executions status
for name in "${targets[@]}"; do
  bin="$build/fuzz/$name"
  src="$root/tests/fuzz/$name.c"
  config=$(grep -o 'fuzz-config:.*' "$src" 2>/dev/null || true)
  max_len=$(sed -n 's/.*max_len=\([0-9]*\).*/\1/p' <<<"$config")
  seed_list=$(sed -n 's/.*seeds=\([^ *]*\).*/\1/p' <<<"$config")
  work="$build/fuzz-corpus/$name"
  artifacts="$build/fuzz-artifacts/$name"
  log="$build/fuzz-logs/$name.log"
  mkdir -p "$work" "$artifacts" "$(dirname "$log")"
  dirs=("$work")
  [ -d "$root/tests/fuzz/corpus/$name" ] && dirs+=("$root/tests/fuzz/corpus/$name")
  IFS=',' read -r -a extra <<<"$seed_list"
  for d in "${extra[@]}"; do
    [ -n "$d" ] && [ -d "$root/$d" ] && dirs+=("$root/$d")
  done
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=512
        -print_final_stats=1 -artifact_prefix="$artifacts/")
  [ -n "$max_len" ] && args+=(-max_len="$max_len")
  [ -n "${FUZZ_SEED:-}" ] && args+=(-seed="$FUZZ_SEED")
  [ -f "$root/tests/fuzz/$name.dict" ] && args+=(-dict="$root/tests/fuzz/$name.dict")

  (cd "$build" && "$bin" "${args[@]}" "${dirs[@]}") >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  execs=${execs:-0}
  total=$((total + execs))
  status=ok
  if [ $rc -ne 0 ]; then
    status="FAILED (exit $rc, log $log)"
    failed+=("$name")
    grep -E 'ERROR: |SUMMARY: |Test unit written to|invariant violated' "$log" | head -5 | sed 's/^/    /'
  fi
  printf '%-26s %8s %14s %s\n' "$name" "$seconds" "$execs" "$status"
  printf '%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$name" "$seconds" "$execs" \
    "$([ $rc -eq 0 ] && echo ok || echo failed)" >>"$build/fuzz-stats.tsv"
done
printf '%-26s %8s %14s\n' total "" "$total"
if [ ${#failed[@]} -gt 0 ]; then
  echo "run.sh: findings in: ${failed[*]} (reproduce: <build>/fuzz/<target> <artifact>)" >&2
  exit 1
fi
