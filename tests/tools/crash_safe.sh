#!/usr/bin/env bash
# Crash-safe output (docs/reliability.md): a writer killed with SIGKILL at random moments never
# leaves a truncated file under the final name (the destination is absent or the previous
# complete file) and its temp file is removed by the next write; disk full (RLIMIT_FSIZE via
# the helper and `ulimit -f`, a 1 MiB tmpfs when mounting is permitted) and unwritable
# directories fail with exit 4, a clear message and no partial output; a mapped input truncated
# by another process becomes an error for that file (SIGBUS guard), not a crash.
# Uses the helpers slow_writer and mapped_reader (tests/tools/*.c) built in $ROSETTA_BUILD/tests.
set -uo pipefail

if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  echo "crash_safe: SKIP under ROSETTA_VALGRIND (runs no apr tool; timing-based)" >&2
  exit 77
fi
SW="$ROSETTA_BUILD/tests/slow_writer"
MR="$ROSETTA_BUILD/tests/mapped_reader"
T="$TEST_TMP/crash_safe"
rm -rf "$T" && mkdir -p "$T"
RANDOM=${CRASH_SAFE_SEED:-20240616}
echo "crash_safe: seed ${CRASH_SAFE_SEED:-20240616}"

fail() {
  echo "crash_safe: FAIL: $*" >&2
  exit 1
}
temps() { # number of temp files of destination $1
  local n=0 f
  for f in "$1".tmp-*; do [ -e "$f" ] && n=$((n + 1)); done
  echo $n
}
id_of() { # id of the complete slow_writer file $1, or fail
  local res
  res=$("$SW" --check "$1" 2>&1) || fail "$1 is not a complete file: $res"
  res=${res#ok id=}
  echo "${res%% *}"
}

# ---- 1. SIGKILL at random moments ------------------------------------------------------------
out="$T/model.bin"
"$SW" --id 0 --size 1500000 "$out" || fail "initial write failed"
last=0
left_temp=0
kills=0
for i in $(seq 1 30); do
  size=$(((RANDOM % 4 + 1) * 700000))
  delay=$((2000 + RANDOM % 10000))
  "$SW" --id "$i" --size "$size" --chunk 65536 --delay-us "$delay" --verify "$out" &
  pid=$!
  sleep "0.$(printf %03d $((RANDOM % 350)))"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 137 ] || fail "writer $i exited $rc"
  [ $rc -eq 137 ] && kills=$((kills + 1))
  id=$(id_of "$out") || exit 1
  # The destination holds the previous complete file, or writer i's if it committed (it may
  # be killed between the rename and its exit).
  if [ "$id" != "$last" ] && [ "$id" != "$i" ]; then
    fail "after kill $i the destination holds writer $id's file, expected $last or $i"
  fi
  [ $rc -eq 0 ] && [ "$id" != "$i" ] && fail "writer $i succeeded but the destination holds $id"
  last=$id
  [ "$(temps "$out")" -gt 1 ] && fail "stale temp files accumulate: $(ls "$out".tmp-*)"
  [ "$(temps "$out")" -eq 1 ] && left_temp=$((left_temp + 1))
done
echo "crash_safe: 30 writers, $kills killed, $left_temp left a temp file that the next write removed"
[ $kills -ge 10 ] || fail "only $kills of 30 writers were killed mid-write (timing too loose)"
[ $left_temp -ge 5 ] || fail "only $left_temp kills left a temp file: the clean-up was not exercised"
"$SW" --id 100 --size 100000 "$out" || fail "write after the kills failed"
[ "$(temps "$out")" -eq 0 ] || fail "temp files left after a complete write: $(ls "$out".tmp-*)"
[ "$(id_of "$out")" = 100 ] || fail "final write not in place"

# Destination absent before: a killed writer leaves nothing under the final name.
fresh="$T/fresh.bin"
"$SW" --id 1 --size 4000000 --delay-us 20000 "$fresh" &
pid=$!
sleep 0.2
kill -9 "$pid"
wait "$pid" 2>/dev/null
[ -e "$fresh" ] && fail "a killed first write left $fresh"
[ "$(temps "$fresh")" -eq 1 ] || fail "expected the killed writer's temp file"

# A live writer's temp file survives another writer's clean-up; both commit in turn.
live="$T/live.bin"
"$SW" --id 1 --size 3000000 --chunk 65536 --delay-us 15000 "$live" &
slow=$!
sleep 0.3
"$SW" --id 2 --size 50000 "$live" || fail "second writer failed"
[ "$(temps "$live")" -eq 1 ] || fail "the clean-up removed a live writer's temp file"
wait "$slow" || fail "the slow writer failed after another writer's clean-up"
[ "$(id_of "$live")" = 1 ] || fail "the slow writer's file is not in place"
[ "$(temps "$live")" -eq 0 ] || fail "temp files left"
# The cleanup removed the stale temp of the killed first write of $fresh once it is written.
"$SW" --id 3 --size 1000 "$fresh" || fail "rewrite of $fresh failed"
[ "$(temps "$fresh")" -eq 0 ] || fail "stale temp of a killed writer not removed by the next run"

# ---- 2. disk full ----------------------------------------------------------------------------
full="$T/full.bin"
"$SW" --id 5 --size 200000 "$full" || fail "write failed"
check_full() { # rc stderr-file case
  [ "$1" -eq 4 ] || fail "$3: exit $1, expected 4 ($(cat "$2"))"
  grep -q "$full" "$2" || fail "$3: message does not name the destination: $(cat "$2")"
  grep -qiE "$4" "$2" || fail "$3: message does not say '$4': $(cat "$2")"
  [ "$(id_of "$full")" = 5 ] || fail "$3: the previous file was replaced"
  [ "$(temps "$full")" -eq 0 ] || fail "$3: partial output left: $(ls "$full".tmp-*)"
  echo "crash_safe: $3: exit 4: $(head -c 200 "$2")"
}
"$SW" --id 6 --size 3000000 --fsize-limit 1000000 --ignore-sigxfsz "$full" 2>"$T/err"
check_full $? "$T/err" "RLIMIT_FSIZE" "file too large"
(ulimit -f 1000 && exec "$SW" --id 6 --size 3000000 --ignore-sigxfsz "$full") 2>"$T/err"
check_full $? "$T/err" "ulimit -f" "file too large"
# Without SIGXFSZ ignored the kernel kills the writer: still no partial output.
{ (ulimit -f 1000 && exec "$SW" --id 6 --size 3000000 "$full"); } 2>/dev/null
rc=$?
[ $rc -eq 153 ] || fail "ulimit -f without SIGXFSZ ignored: exit $rc, expected 153 (SIGXFSZ)"
[ "$(id_of "$full")" = 5 ] || fail "SIGXFSZ: the previous file was replaced"
"$SW" --id 5 --size 200000 "$full" && [ "$(temps "$full")" -eq 0 ] ||
  fail "SIGXFSZ: the killed writer's temp file was not cleaned by the next run"

small="$T/small-fs"
mkdir -p "$small"
if mount -t tmpfs -o size=1m rosetta-crash-safe "$small" 2>/dev/null; then
  trap 'umount "$small" 2>/dev/null' EXIT
  full="$small/model.bin"
  "$SW" --id 5 --size 200000 "$full" || fail "write on tmpfs failed"
  "$SW" --id 6 --size 3000000 "$full" 2>"$T/err"
  rc=$?
  check_full $rc "$T/err" "1 MiB tmpfs" "no space left"
  # A real format writer (the GGUF writer, through the write_formats helper) on the full disk.
  WF="$ROSETTA_BUILD/tests/write_formats"
  if [ -x "$WF" ]; then
    "$WF" "$ROSETTA_ROOT/fixtures/tiny-qwen2/model.safetensors" --gguf "$small/model.gguf" 2>"$T/err"
    rc=$?
    [ $rc -eq 4 ] || fail "GGUF writer on a full disk: exit $rc, expected 4 ($(cat "$T/err"))"
    grep -q "$small/model.gguf" "$T/err" && grep -qi "no space left" "$T/err" ||
      fail "GGUF writer on a full disk: unclear message: $(cat "$T/err")"
    [ -e "$small/model.gguf" ] && fail "GGUF writer on a full disk left $small/model.gguf"
    [ "$(temps "$small/model.gguf")" -eq 0 ] || fail "GGUF writer on a full disk left a temp file"
    echo "crash_safe: GGUF writer, 1 MiB tmpfs: exit 4: $(cat "$T/err")"
  fi
  umount "$small"
else
  echo "crash_safe: note: mounting a tmpfs is not permitted here; ENOSPC case covered by RLIMIT_FSIZE only" >&2
fi

# ---- 3. unwritable directory -----------------------------------------------------------------
check_unwritable() { # rc stderr-file dest case
  [ "$1" -eq 4 ] || fail "$4: exit $1, expected 4 ($(cat "$2"))"
  grep -q "$3" "$2" || fail "$4: message does not name $3: $(cat "$2")"
  grep -q "cannot create temporary file" "$2" || fail "$4: unclear message: $(cat "$2")"
  [ -e "$3" ] && fail "$4: output created"
  echo "crash_safe: $4: exit 4: $(cat "$2")"
}
"$SW" "$T/no-such-dir/model.bin" 2>"$T/err"
check_unwritable $? "$T/err" "$T/no-such-dir/model.bin" "missing directory"
"$SW" /sys/rosetta-crash-safe.bin 2>"$T/err"
check_unwritable $? "$T/err" /sys/rosetta-crash-safe.bin "read-only file system (sysfs)"
ro="$T/readonly"
mkdir -p "$ro" && chmod 555 "$ro"
if [ "$(id -u)" -ne 0 ]; then
  "$SW" "$ro/model.bin" 2>"$T/err"
  check_unwritable $? "$T/err" "$ro/model.bin" "directory without write permission"
elif command -v setpriv >/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups \
  test -x "$SW" 2>/dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$ro"; then
  setpriv --reuid=65534 --regid=65534 --clear-groups "$SW" "$ro/model.bin" 2>"$T/err"
  check_unwritable $? "$T/err" "$ro/model.bin" "directory without write permission (as nobody)"
else
  echo "crash_safe: note: running as root without setpriv access: permission case skipped" >&2
fi

# ---- 4. mapped input truncated by another process --------------------------------------------
run_truncated() { # helper-args... ; truncates $victim to $keep bytes once it is mapped
  local fifo="$T/fifo"
  rm -f "$fifo" && mkfifo "$fifo"
  "$MR" "$@" <"$fifo" >"$T/mr.out" 2>"$T/mr.err" &
  local pid=$!
  exec 7>"$fifo"
  for _ in $(seq 1 200); do
    grep -q mapped "$T/mr.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if grep -q mapped "$T/mr.out"; then
    truncate -s "$keep" "$victim"
    echo go >&7
  fi
  exec 7>&-
  wait "$pid" 2>/dev/null
}
victim="$T/mapped.bin"
keep=4096
head -c 6000000 /dev/zero | tr '\0' 'x' >"$victim"
run_truncated "$victim"
rc=$?
[ $rc -eq 3 ] || fail "truncated mapping (guarded): exit $rc, expected 3 ($(cat "$T/mr.err"))"
grep -q "$victim: file changed while in use: read at offset 4096" "$T/mr.err" ||
  fail "truncated mapping: unclear message: $(cat "$T/mr.err")"
echo "crash_safe: truncated mapping: $(cat "$T/mr.err")"
head -c 6000000 /dev/zero | tr '\0' 'x' >"$victim"
run_truncated --unguarded "$victim"
rc=$?
# (In a sanitizer build AddressSanitizer reports the SIGBUS itself and exits 1.)
[ $rc -eq 135 ] || { [ $rc -ne 0 ] && grep -q "BUS" "$T/mr.err"; } ||
  fail "truncated mapping without the guard: exit $rc, expected 135 (SIGBUS)"

victim="$T/model.safetensors"
cp "$ROSETTA_ROOT/fixtures/tiny-qwen2/model.safetensors" "$victim"
keep=$(($(stat -c %s "$victim") / 2))
run_truncated --model "$victim"
rc=$?
if [ $rc -eq 77 ]; then
  echo "crash_safe: note: model case skipped, this build cannot open SafeTensors: $(cat "$T/mr.err")" >&2
else
  [ $rc -eq 3 ] || fail "truncated model (guarded): exit $rc, expected 3 ($(cat "$T/mr.err"))"
  grep -q "$victim: file changed while in use" "$T/mr.err" ||
    fail "truncated model: unclear message: $(cat "$T/mr.err")"
  echo "crash_safe: truncated model: $(cat "$T/mr.err")"
fi

# ---- 5. special files where model files are expected ----------------------------------------
# A FIFO (tar can create one) must give an error, not block the reader forever.
special="$T/special"
mkdir -p "$special/beside"
mkfifo "$special/model.safetensors" "$special/beside/config.json"
cp "$ROSETTA_ROOT/fixtures/tiny-qwen2/model.safetensors" "$special/beside/"
for target in "$special/model.safetensors" "$special/beside/model.safetensors" "$special/beside"; do
  echo go | timeout 20 "$MR" --model "$target" >/dev/null 2>"$T/err"
  rc=$?
  [ $rc -eq 124 ] && fail "$target: the reader blocked on a FIFO"
  [ $rc -eq 77 ] && { echo "crash_safe: note: $target: reader not available" >&2; continue; }
  [ $rc -eq 3 ] || fail "$target: exit $rc, expected 3 ($(cat "$T/err"))"
  echo "crash_safe: FIFO: $(cat "$T/err")"
done

# ---- 6. a writing tool: apr quantize ----------------------------------------------------------
Q="$APR_BIN/apr-quantize"
if [ -x "$Q" ]; then
  src="$ROSETTA_ROOT/fixtures/tiny-qwen2"
  qout="$T/quantized.gguf"
  "$Q" -q -t 1 "$src" "$T/reference.gguf" q4_k_m >/dev/null 2>"$T/err" ||
    fail "apr quantize failed: $(cat "$T/err")"
  # Killed at random moments (the tool takes tens of milliseconds here): the destination is
  # absent or complete (equal to the reference output), and the next run removes stale temps.
  qkilled=0
  for i in $(seq 1 30); do
    "$Q" -q -t 1 "$src" "$qout" q4_k_m >/dev/null 2>&1 &
    pid=$!
    sleep "0.0$(printf %02d $((RANDOM % 60)))"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    [ $? -eq 137 ] && qkilled=$((qkilled + 1))
    if [ -e "$qout" ]; then
      cmp -s "$qout" "$T/reference.gguf" || fail "apr quantize killed: $qout is not a complete output"
    fi
    [ "$(temps "$qout")" -le 1 ] || fail "apr quantize: stale temp files accumulate"
  done
  "$Q" -q -t 1 "$src" "$qout" q4_k_m >/dev/null 2>&1 || fail "apr quantize after the kills failed"
  cmp -s "$qout" "$T/reference.gguf" || fail "apr quantize after the kills: wrong output"
  [ "$(temps "$qout")" -eq 0 ] || fail "apr quantize: stale temp file not removed by the next run"
  echo "crash_safe: apr quantize: 30 runs, $qkilled killed: output always absent or complete"

  # Unwritable directory and file-size limit: exit 4, message naming the output, no output.
  "$Q" -q "$src" "$T/no-such-dir/q.gguf" q4_k_m >/dev/null 2>"$T/err"
  rc=$?
  [ $rc -eq 4 ] || fail "apr quantize into a missing directory: exit $rc, expected 4 ($(cat "$T/err"))"
  # (It may name its scratch file in that directory rather than OUT itself.)
  grep -q "$T/no-such-dir/" "$T/err" || fail "apr quantize: unclear message: $(cat "$T/err")"
  echo "crash_safe: apr quantize, missing directory: exit 4: $(cat "$T/err")"
  rm -f "$qout"
  { (trap '' XFSZ && ulimit -f 500 && exec "$Q" -q "$src" "$qout" q4_k_m); } >/dev/null 2>"$T/err"
  rc=$?
  [ $rc -eq 4 ] || fail "apr quantize under ulimit -f (SIGXFSZ ignored): exit $rc, expected 4 ($(cat "$T/err"))"
  grep -q "$T/" "$T/err" || fail "apr quantize under ulimit -f: unclear message: $(cat "$T/err")"
  [ -e "$qout" ] && fail "apr quantize under ulimit -f left $qout"
  [ "$(temps "$qout")" -eq 0 ] || fail "apr quantize under ulimit -f left a temp file"
  echo "crash_safe: apr quantize, ulimit -f: exit 4: $(cat "$T/err")"
  { (ulimit -f 500 && exec "$Q" -q "$src" "$qout" q4_k_m); } >/dev/null 2>&1
  rc=$?
  [ -e "$qout" ] && fail "apr quantize under ulimit -f (SIGXFSZ default) left $qout"
  case $rc in
    4) ;;
    153) echo "crash_safe: note: apr quantize does not ignore SIGXFSZ: killed by the size limit (exit 153) instead of exit 4" >&2 ;;
    *) fail "apr quantize under ulimit -f: exit $rc" ;;
  esac
  if mount -t tmpfs -o size=1m rosetta-crash-safe "$small" 2>/dev/null; then
    "$Q" -q "$src" "$small/q.gguf" q4_k_m >/dev/null 2>"$T/err"
    rc=$?
    umount "$small"
    [ $rc -eq 4 ] || fail "apr quantize on a full disk: exit $rc, expected 4 ($(cat "$T/err"))"
    grep -qi "no space left" "$T/err" || fail "apr quantize on a full disk: unclear message: $(cat "$T/err")"
    echo "crash_safe: apr quantize, 1 MiB tmpfs: exit 4: $(cat "$T/err")"
  fi
else
  echo "crash_safe: note: apr-quantize not built here; writing-tool cases skipped" >&2
fi

echo "crash_safe: ok"
