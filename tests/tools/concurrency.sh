#!/usr/bin/env bash
# Concurrency (docs/reliability.md): 8 processes at once on the same inputs and outputs give
# correct outputs and clear errors, never interleaved garbage.
#  1. 8 writers (slow_writer, through the library's atomic writer) replace the same file while
#     8 readers check it over and over: every read sees one writer's complete file, the last
#     rename wins, no temp file is left, no writer disturbs another's temp file.
#  2. 8 copies of each read-only apr tool on the same fixture print exactly what one copy
#     prints alone (same bytes, same exit code).
#  3. When the write_formats helper exists: 8 GGUF writes of the same model to the same path,
#     while apr inspect reads it: the result is byte-identical to a single write.
#  4. 16 apr quantize at once, 8 of them on one output: every output and plan equals a single
#     run's.
set -uo pipefail

if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  echo "concurrency: SKIP under ROSETTA_VALGRIND (timing-based; the tools run under valgrind in their own tests)" >&2
  exit 77
fi
SW="$ROSETTA_BUILD/tests/slow_writer"
WF="$ROSETTA_BUILD/tests/write_formats"
T="$TEST_TMP/concurrency"
rm -rf "$T" && mkdir -p "$T"
N=8

fail() {
  echo "concurrency: FAIL: $*" >&2
  exit 1
}
temps() {
  local n=0 f
  for f in "$1".tmp-*; do [ -e "$f" ] && n=$((n + 1)); done
  echo $n
}

# ---- 1. writers racing on one destination, readers checking it ------------------------------
out="$T/shared.bin"
"$SW" --id 0 --size 300000 "$out" || fail "initial write failed"
stop="$T/stop"
readers=()
for r in $(seq 1 $N); do
  (
    checks=0
    while [ ! -e "$stop" ]; do
      res=$("$SW" --check "$out" 2>&1) || { echo "reader $r: $res" >"$T/reader-$r.bad"; exit 1; }
      checks=$((checks + 1))
    done
    echo "$checks" >"$T/reader-$r.count"
  ) &
  readers+=($!)
done
writers=()
for w in $(seq 1 $N); do
  "$SW" --id "$w" --size $((500000 + w * 123457)) --chunk 32768 --delay-us $((w * 500)) --verify \
    "$out" 2>"$T/writer-$w.err" &
  writers+=($!)
done
for k in "${!writers[@]}"; do
  wait "${writers[$k]}" || fail "writer $((k + 1)) failed: $(cat "$T/writer-$((k + 1)).err")"
done
touch "$stop"
for pid in "${readers[@]}"; do wait "$pid"; done
for r in $(seq 1 $N); do
  [ -e "$T/reader-$r.bad" ] && fail "a reader saw an incomplete or mixed file: $(cat "$T/reader-$r.bad")"
done
total_checks=0
for f in "$T"/reader-*.count; do total_checks=$((total_checks + $(cat "$f"))); done
res=$("$SW" --check "$out") || fail "final file broken"
id=${res#ok id=}
id=${id%% *}
[ "$id" -ge 1 ] && [ "$id" -le $N ] || fail "final file from writer $id, expected one of 1..$N"
[ "$(temps "$out")" -eq 0 ] || fail "temp files left: $(ls "$out".tmp-*)"
echo "concurrency: $N writers, $N readers: $total_checks complete reads, final file from writer $id"

# 8 writers that cannot write: each fails on its own with a clear message, nothing is created.
pids=()
for w in $(seq 1 $N); do
  "$SW" --id "$w" "$T/missing-dir/out.bin" 2>"$T/nowrite-$w.err" &
  pids+=($!)
done
for w in $(seq 1 $N); do
  wait "${pids[$((w - 1))]}"
  rc=$?
  [ $rc -eq 4 ] || fail "writer $w into a missing directory: exit $rc, expected 4"
  [ "$(cat "$T/nowrite-$w.err")" = "slow_writer: $T/missing-dir/out.bin: cannot create temporary file: No such file or directory" ] ||
    fail "writer $w: unclear or interleaved message: $(cat "$T/nowrite-$w.err")"
done

# ---- 2. read-only tools, 8 at a time -----------------------------------------------------------
inputs=("$ROSETTA_ROOT/fixtures/tiny-qwen2/model.safetensors" "$ROSETTA_ROOT/fixtures/tiny-qwen2-odd")
ran=0
for tool in detect inspect tensors; do
  bin="$APR_BIN/apr-$tool"
  [ -x "$bin" ] || { echo "concurrency: note: apr-$tool not built here, skipped" >&2; continue; }
  for input in "${inputs[@]}"; do
    args=("$input")
    [ "$tool" = tensors ] && "$bin" --help 2>/dev/null | grep -q -- --stats && args+=(--stats)
    "$bin" "${args[@]}" >"$T/ref.out" 2>"$T/ref.err"
    ref_rc=$?
    pids=()
    for k in $(seq 1 $N); do
      "$bin" "${args[@]}" >"$T/par-$k.out" 2>"$T/par-$k.err" &
      pids+=($!)
    done
    for k in $(seq 1 $N); do
      wait "${pids[$((k - 1))]}"
      rc=$?
      [ $rc -eq $ref_rc ] || fail "apr-$tool ${args[*]}: copy $k exit $rc, alone $ref_rc"
      cmp -s "$T/ref.out" "$T/par-$k.out" || fail "apr-$tool ${args[*]}: copy $k printed other output"
      cmp -s "$T/ref.err" "$T/par-$k.err" || fail "apr-$tool ${args[*]}: copy $k printed other errors"
    done
    ran=$((ran + 1))
  done
done
echo "concurrency: $ran tool/input pairs run $N at a time, identical to a single run"

# ---- 3. a format writer, 8 at a time on one path -----------------------------------------------
if [ -x "$WF" ]; then
  src="$ROSETTA_ROOT/fixtures/tiny-qwen2/model.safetensors"
  "$WF" "$src" --gguf "$T/ref.gguf" 2>"$T/wf.err" || fail "write_formats failed: $(cat "$T/wf.err")"
  stop="$T/stop-gguf"
  inspect="$APR_BIN/apr-inspect"
  reader=""
  if [ -x "$inspect" ]; then
    cp "$T/ref.gguf" "$T/shared.gguf"
    "$inspect" "$T/shared.gguf" >"$T/inspect-ref.out" 2>&1 || fail "apr inspect of the GGUF failed"
    (
      reads=0
      while [ ! -e "$stop" ]; do
        "$inspect" "$T/shared.gguf" >"$T/inspect.out" 2>&1 || { cp "$T/inspect.out" "$T/inspect.bad"; exit 1; }
        cmp -s "$T/inspect.out" "$T/inspect-ref.out" || { cp "$T/inspect.out" "$T/inspect.bad"; exit 1; }
        reads=$((reads + 1))
      done
      echo "$reads" >"$T/inspect.count"
    ) &
    reader=$!
  fi
  pids=()
  for k in $(seq 1 $N); do
    "$WF" "$src" --gguf "$T/shared.gguf" 2>"$T/wf-$k.err" &
    pids+=($!)
  done
  for k in $(seq 1 $N); do
    wait "${pids[$((k - 1))]}" || fail "GGUF writer $k failed: $(cat "$T/wf-$k.err")"
  done
  touch "$stop"
  if [ -n "$reader" ]; then
    wait "$reader" || fail "apr inspect saw a broken GGUF while it was being replaced: $(head -c 400 "$T/inspect.bad")"
  fi
  cmp -s "$T/ref.gguf" "$T/shared.gguf" || fail "8 concurrent GGUF writes differ from a single write"
  [ "$(temps "$T/shared.gguf")" -eq 0 ] || fail "GGUF temp files left"
  echo "concurrency: $N GGUF writers on one path: result identical to a single write" \
    "($(cat "$T/inspect.count" 2>/dev/null || echo no) apr inspect runs meanwhile, all complete)"
else
  echo "concurrency: note: $WF not built here; format-writer case skipped" >&2
fi
# ---- 4. a writing tool: 8 apr quantize on one output, 8 on their own outputs --------------------
Q="$APR_BIN/apr-quantize"
if [ -x "$Q" ]; then
  src="$ROSETTA_ROOT/fixtures/tiny-qwen2"
  "$Q" -q -t 1 "$src" "$T/q-shared.gguf" q4_k_m >"$T/q-ref.plan" 2>"$T/q.err" ||
    fail "apr quantize failed: $(cat "$T/q.err")"
  mv "$T/q-shared.gguf" "$T/q-ref.gguf"
  pids=()
  for k in $(seq 1 $N); do
    "$Q" -q -t 1 "$src" "$T/q-shared.gguf" q4_k_m >"$T/q-$k.plan" 2>"$T/q-$k.err" &
    pids+=($!)
    "$Q" -q -t 1 "$src" "$T/q-own-$k.gguf" q4_k_m >/dev/null 2>"$T/q-own-$k.err" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || fail "a parallel apr quantize failed: $(cat "$T"/q-*.err | head -c 400)"
  done
  cmp -s "$T/q-ref.gguf" "$T/q-shared.gguf" || fail "8 apr quantize on one output: result differs"
  for k in $(seq 1 $N); do
    cmp -s "$T/q-ref.gguf" "$T/q-own-$k.gguf" || fail "parallel apr quantize $k: output differs"
    cmp -s "$T/q-ref.plan" "$T/q-$k.plan" || fail "parallel apr quantize $k: plan on stdout differs"
  done
  [ "$(temps "$T/q-shared.gguf")" -eq 0 ] || fail "apr quantize temp files left"
  echo "concurrency: $((2 * N)) apr quantize at once (8 on one output): outputs identical to a single run"
else
  echo "concurrency: note: apr-quantize not built here; writing-tool case skipped" >&2
fi
echo "concurrency: ok"
