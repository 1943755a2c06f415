#!/usr/bin/env bash
# Hostile paths and environments (docs/reliability.md, "Hostile environments"): the tools never
# damage anything but their output and never die of a signal. One section per case:
#  1 device, FIFO, socket or directory at OUT     6 SIGINT/SIGTERM during the write
#  2 OUT is one of the input's own files          7 GGUF without general.architecture
#  3 the input truncated while it is read         8 --json with a non-UTF-8 path
#  4 stdout closed (SIGPIPE)                      9 pipes and FIFOs as input
#  5 ulimit -f (SIGXFSZ)                         10 output path checked before the work
# then the CLI polish (success line, one requantization warning, one-line option errors,
# directory inputs, single .safetensors warning, file type names, llama-quantize options), and
# the same cases through the convert tools (apr convert, apr import, apr export).
# Device nodes are made with mknod in this test's own directory (root only; skipped otherwise).
# Cases 3 and 6 use the LD_PRELOAD helper tests/tools/preload/hostile_preload.c to truncate the
# input right after the tool maps it / to slow the temp-file writes down; they are skipped under
# Valgrind (ROSETTA_VALGRIND=1), as is everything timing-based; under Valgrind every other case
# runs once per code path (one special file, one tool per check) to keep the run short.
set -uo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"

T="$TEST_TMP/hostile"
rm -rf "$T" && mkdir -p "$T"
Q="$APR_BIN/apr-quantize"
FX="$ROSETTA_ROOT/fixtures/tiny-qwen2"
PRELOAD="$ROSETTA_BUILD/tests/hostile_preload.so"
SW="$ROSETTA_BUILD/tests/slow_writer"
VALGRIND=${ROSETTA_VALGRIND:-0}
TEST_NAME=hostile
. "$ROSETTA_ROOT/tests/tools/lib/checks.sh"
note() { echo "hostile: $*"; }
temps() { local n=0 f; for f in "$1".tmp-*; do [ -e "$f" ] && n=$((n + 1)); done; echo $n; }

# A Q8_0 GGUF of the fixture: the input of several cases.
"$Q" -q "$FX" "$T/q8.gguf" q8_0 >/dev/null 2>"$T/err" || { cat "$T/err"; exit 1; }

# ---- 1. something other than a regular file at OUT -------------------------------------------
mkdir -p "$T/nodes"
specials=()
if mknod "$T/nodes/null" c 1 3 2>/dev/null && mknod "$T/nodes/full" c 1 7 2>/dev/null; then
  specials+=("$T/nodes/null" "$T/nodes/full")
else
  note "not root: no device nodes (mknod refused); FIFO, socket and directory only"
fi
mkfifo "$T/nodes/fifo"
specials+=("$T/nodes/fifo")
if python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
  "$T/nodes/sock" 2>/dev/null; then
  specials+=("$T/nodes/sock")
fi
mkdir -p "$T/nodes/dir.gguf"
specials+=("$T/nodes/dir.gguf")
ln -s "$T/nodes/fifo" "$T/nodes/link-to-fifo"
specials+=("$T/nodes/link-to-fifo")
[ "$VALGRIND" = 1 ] && specials=("$T/nodes/fifo" "$T/nodes/dir.gguf")
for node in "${specials[@]}"; do
  before=$(stat -c %F "$node")
  run "$T/out" "$T/err" timeout 60 "$Q" --format gguf "$FX" "$node" q8_0
  rc=$?
  expect "1: $node" 2 $rc
  has "1: $node" "$T/err" "$node: is "
  has "1: $node" "$T/err" "not a regular file"
  [ -s "$T/out" ] && fail "1: $node: the plan was printed: the check must come before the work"
  [ "$(stat -c %F "$node")" = "$before" ] || fail "1: $node was replaced by a $(stat -c %F "$node")"
done
note "1: OUT = ${#specials[@]} special files: exit 2 before any work, nothing replaced: $(head -1 "$T/err")"
# the library's writers refuse too (a program that does not call rf_output_check)
if [ -x "$ROSETTA_BUILD/tests/write_formats" ]; then
  run "$T/out" "$T/err" "$ROSETTA_BUILD/tests/write_formats" "$FX/model.safetensors" --gguf "$T/nodes/fifo"
  [ $? -ne 0 ] || fail "1: the GGUF writer replaced a FIFO"
  [ -p "$T/nodes/fifo" ] || fail "1: the GGUF writer replaced the FIFO"
fi

# ---- 2. OUT is one of the input's files ------------------------------------------------------
cp -r "$FX" "$T/own"
cp "$FX/model.safetensors" "$T/original.safetensors"
run "$T/out" "$T/err" "$Q" "$T/own" "$T/own/model.safetensors" f16
expect "2: OUT = the input's weights" 2 $?
has "2: weights" "$T/err" "is a file of the input model"
cmp -s "$T/own/model.safetensors" "$T/original.safetensors" || fail "2: the input's weights changed"
if [ "$VALGRIND" != 1 ]; then
  run "$T/out" "$T/err" "$Q" --format gguf "$T/own" "$T/own/config.json" q8_0
  expect "2: OUT = the input's config.json" 2 $?
  cmp -s "$T/own/config.json" "$FX/config.json" || fail "2: the input's config.json changed"
  run "$T/out" "$T/err" "$Q" --format safetensors "$T/own" "$T/own" f16
  expect "2: OUT = the input's directory" 2 $?
  has "2: directory" "$T/err" "is the directory of the input model"
  cmp -s "$T/own/model.safetensors" "$T/original.safetensors" || fail "2: the input's weights changed"
  ln "$T/own/model.safetensors" "$T/hardlink.safetensors"
  run "$T/out" "$T/err" "$Q" "$T/own" "$T/hardlink.safetensors" f16
  expect "2: OUT = a hard link to the input's weights" 2 $?
  rm -f "$T/hardlink.safetensors"
fi
# --force: replaced, but only by the complete new file
run "$T/out" "$T/err" "$Q" -q --force "$T/own" "$T/own/model.safetensors" f16
expect "2: --force" 0 $?
"$APR_BIN/apr-tensors" "$T/own/model.safetensors" >"$T/out" 2>"$T/err" || fail "2: --force wrote a bad file"
grep -q " F16 " "$T/out" || fail "2: --force: the input was not replaced by the F16 output"
[ "$(temps "$T/own/model.safetensors")" -eq 0 ] || fail "2: --force left a temp file"
note "2: OUT = an input file (weights, config.json, its directory, a hard link): exit 2; --force replaces it"

# ---- 3. the input truncated while it is read -------------------------------------------------
if [ "$VALGRIND" = 1 ]; then
  note "3: skipped under Valgrind (LD_PRELOAD helper)"
elif [ ! -f "$PRELOAD" ]; then
  fail "3: $PRELOAD not built"
else
  truncated() { # truncated VICTIM KEEP CMD...: runs CMD with VICTIM truncated to KEEP once mapped
    local victim keep
    victim=$(readlink -f "$1")
    keep=$2
    shift 2
    HOSTILE_TRUNCATE="$victim:$keep" LD_PRELOAD="$PRELOAD" \
      ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
      "$@" >"$T/out" 2>"$T/err"
  }
  cp "$T/q8.gguf" "$T/victim.gguf"
  truncated "$T/victim.gguf" 200000 "$APR_BIN/apr-tensors" --stats "$T/victim.gguf"
  expect "3: apr tensors --stats, input truncated" 3 $?
  has "3: tensors" "$T/err" "file changed while in use"
  cp -r "$FX" "$T/victim-dir"
  truncated "$T/victim-dir/model.safetensors" 100000 "$Q" "$T/victim-dir" "$T/t.gguf" q8_0
  expect "3: apr quantize, input truncated" 3 $?
  has "3: quantize" "$T/err" "file changed while in use"
  [ -e "$T/t.gguf" ] && fail "3: apr quantize left an output"
  [ "$(temps "$T/t.gguf")" -eq 0 ] || fail "3: apr quantize left a temp file"
  # an F32 source is quantized in place from the mapping by worker threads
  "$Q" -q "$FX" "$T/f32.gguf" f32 >/dev/null 2>&1 || fail "3: f32 copy"
  cp "$T/f32.gguf" "$T/victim-f32.gguf"
  truncated "$T/victim-f32.gguf" 300000 "$Q" -t 2 "$T/victim-f32.gguf" "$T/t2.gguf" q4_k_m
  expect "3: apr quantize -t 2 of an F32 input, truncated" 3 $?
  has "3: quantize F32" "$T/err" "file changed while in use"
  # kept tensors (F32 to F32) are copied by the writer straight from the mapping
  cp "$T/f32.gguf" "$T/victim2.gguf"
  truncated "$T/victim2.gguf" 300000 "$Q" --format apr "$T/victim2.gguf" "$T/t.apr" f32
  expect "3: apr quantize F32 GGUF to APR (tensors kept), truncated" 3 $?
  has "3: writer copy" "$T/err" "file changed while in use"
  [ -e "$T/t.apr" ] && fail "3: the writer left an output"
  # a forensic view reading raw bytes
  if [ -x "$APR_BIN/apr-hex" ]; then
    cp "$T/q8.gguf" "$T/victim3.gguf"
    truncated "$T/victim3.gguf" 100000 "$APR_BIN/apr-hex" --entropy "$T/victim3.gguf"
    expect "3: apr hex --entropy, input truncated" 3 $?
    has "3: hex" "$T/err" "file changed while in use"
  fi
  note "3: truncated while read: exit 3: $(tail -1 "$T/err")"
fi
# apr chat: the model truncated between two turns of a session (stdin from a FIFO). Cut inside
# the embedding, the guarded reads report it; cut after it, the worker threads' matrix products
# fault outside any guard and the tools' last-resort SIGBUS handler ends the session (exit 3).
if [ "$VALGRIND" != 1 ] && [ -x "$APR_BIN/apr-chat" ]; then
  "$Q" "$FX" "$T/chat-f32.gguf" f32 >/dev/null 2>&1 || fail "3: f32 copy for apr chat"
  for keep in 100000 3000000; do
    cp "$T/chat-f32.gguf" "$T/chat-victim.gguf"
    rm -f "$T/chat.fifo" && mkfifo "$T/chat.fifo"
    timeout 60 "$APR_BIN/apr-chat" "$T/chat-victim.gguf" -n 4 -t 2 <"$T/chat.fifo" \
      >"$T/chat.out" 2>"$T/err" &
    chat_pid=$!
    exec 7>"$T/chat.fifo"
    printf 'hello\n' >&7
    for _ in $(seq 100); do grep -q . "$T/chat.out" 2>/dev/null && break; sleep 0.1; done
    sleep 0.5
    truncate -s "$keep" "$T/chat-victim.gguf"
    printf 'again\n' >&7
    exec 7>&-
    wait "$chat_pid"
    expect "3: apr chat, model truncated to $keep bytes between turns" 3 $?
    has "3: apr chat ($keep)" "$T/err" "changed while in use"
  done
  note "3: apr chat: exit 3: $(tail -1 "$T/err")"
fi

# ---- 4. stdout closed (SIGPIPE) --------------------------------------------------------------
closed_stdout() { # runs CMD with stdout a pipe nobody reads (read end closed first)
  python3 -c '
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
p = subprocess.run(sys.argv[1:], stdout=w)
sys.exit(p.returncode if p.returncode >= 0 else 128 - p.returncode)' "$@" 2>"$T/err"
}
rm -f "$T/p.gguf"
closed_stdout "$Q" "$FX" "$T/p.gguf" q8_0
expect "4: apr quantize, stdout closed" 0 $?
cmp -s "$T/p.gguf" "$T/q8.gguf" || fail "4: apr quantize, stdout closed: output missing or different"
grep -q "Broken pipe" "$T/err" && fail "4: EPIPE reported as an error: $(cat "$T/err")"
rm -f "$T/p.gguf"
closed_stdout "$Q" --json "$FX" "$T/p.gguf" q8_0
expect "4: apr quantize --json, stdout closed (the result was asked on stdout)" 4 $?
cmp -s "$T/p.gguf" "$T/q8.gguf" || fail "4: apr quantize --json, stdout closed: output missing"
tools=(inspect tensors)
[ "$VALGRIND" = 1 ] && tools=(tensors)
for tool in "${tools[@]}"; do
  closed_stdout "$APR_BIN/apr-$tool" "$T/q8.gguf"
  expect "4: apr $tool, stdout closed" 4 $?
  [ -s "$T/err" ] && fail "4: apr $tool, stdout closed: noise on stderr: $(cat "$T/err")"
done
note "4: stdout closed: apr quantize exit 0 with its output, --json/inspect/tensors exit 4, silent"

# ---- 5. ulimit -f (SIGXFSZ) ------------------------------------------------------------------
rm -f "$T/uf.gguf"
if [ "$VALGRIND" = 1 ]; then
  note "5: skipped under Valgrind (its own files would meet the limit)"
else
  (ulimit -f 1000 && exec "$Q" -q "$FX" "$T/uf.gguf" f32) >/dev/null 2>"$T/err"
  expect "5: ulimit -f" 4 $?
  has "5: ulimit -f" "$T/err" "file size limit"
  [ -e "$T/uf.gguf" ] && fail "5: ulimit -f left $T/uf.gguf"
  [ "$(temps "$T/uf.gguf")" -eq 0 ] || fail "5: ulimit -f left a temp file"
  note "5: ulimit -f: exit 4: $(cat "$T/err")"
fi

# ---- 6. SIGINT/SIGTERM during the write ------------------------------------------------------
if [ "$VALGRIND" = 1 ]; then
  note "6: skipped under Valgrind (timing)"
else
  wait_temp() { # wait_temp DEST PID: until DEST has a temp file (or PID is gone)
    for _ in $(seq 1 400); do
      [ "$(temps "$1")" -ge 1 ] && return 0
      kill -0 "$2" 2>/dev/null || return 1
      sleep 0.01
    done
    return 1
  }
  # A non-interactive shell starts background jobs with SIGINT ignored (and the tools keep an
  # ignored signal ignored): reset it to the default action for them.
  default_sigint() {
    exec python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
  }
  for sig in INT TERM; do
    want=$((128 + $(kill -l $sig)))
    # the library's writer (slow_writer), then a tool (apr quantize, writes slowed down)
    default_sigint "$SW" --size 3000000 --chunk 65536 --delay-us 20000 "$T/sig.bin" 2>/dev/null &
    pid=$!
    wait_temp "$T/sig.bin" $pid || fail "6: slow_writer made no temp file"
    kill -$sig $pid
    wait $pid
    rc=$?
    [ $rc -eq $want ] || fail "6: slow_writer, SIG$sig: exit $rc, expected $want"
    [ "$(temps "$T/sig.bin")" -eq 0 ] || fail "6: slow_writer, SIG$sig: temp file left behind"
    HOSTILE_SLOW_WRITE_MS=300 LD_PRELOAD="$PRELOAD" \
      ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
      default_sigint "$Q" -q "$FX" "$T/sig.gguf" q8_0 >/dev/null 2>&1 &
    pid=$!
    wait_temp "$T/sig.gguf" $pid || fail "6: apr quantize made no temp file"
    kill -$sig $pid
    wait $pid
    rc=$?
    [ $rc -eq $want ] || fail "6: apr quantize, SIG$sig: exit $rc, expected $want"
    [ "$(temps "$T/sig.gguf")" -eq 0 ] || fail "6: apr quantize, SIG$sig: temp file left behind"
    [ -e "$T/sig.gguf" ] && fail "6: apr quantize, SIG$sig: an output appeared"
  done
  note "6: SIGINT/SIGTERM during the write: exit 130/143, no temp file left"
fi

# ---- 7. GGUF without general.architecture ----------------------------------------------------
python3 - "$T/q8.gguf" "$T/noarch.gguf" "$T/badarch.gguf" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
key = b"general.architecture"
assert data.count(key) == 1
open(sys.argv[2], "wb").write(data.replace(key, b"general.architecturX"))  # key missing
at = data.index(key) + len(key) + 4 + 8                                   # type, length
assert data[at:at + 5] == b"qwen2"
open(sys.argv[3], "wb").write(data[:at] + b"Qw n2" + data[at + 5:])      # not a name
EOF
archs=(noarch badarch)
[ "$VALGRIND" = 1 ] && archs=(noarch)
for f in "${archs[@]}"; do
  run "$T/out" "$T/err" "$APR_BIN/apr-inspect" "$T/$f.gguf"
  expect "7: apr inspect $f.gguf" 0 $?
  has "7: inspect $f" "$T/err" "warning:"
  has "7: inspect $f" "$T/err" "general.architecture"
  run "$T/out" "$T/err" "$Q" "$T/$f.gguf" "$T/$f-q.gguf" q8_0
  expect "7: apr quantize $f.gguf" 5 $?
  has "7: quantize $f" "$T/err" "rule gguf.architecture"
  [ -s "$T/out" ] && fail "7: quantize $f: refused only after planning"
  [ -e "$T/$f-q.gguf" ] && fail "7: quantize $f wrote a GGUF llama.cpp cannot load"
done
note "7: no architecture: inspect warns, quantize exit 5: $(cat "$T/err")"

# ---- 8. --json with a non-UTF-8 path ---------------------------------------------------------
odd="$T/odd-"$'\xff\xfe'"-name.gguf"
cp "$T/q8.gguf" "$odd"
json_ok() { # json_ok CASE FILE: strict UTF-8 JSON holding U+FFFD
  python3 -c '
import json, sys
text = open(sys.argv[1], "rb").read().decode("utf-8")  # strict: raises on invalid UTF-8
json.loads(text)
assert "\ufffd" in text, "no U+FFFD"' "$2" 2>"$T/json.err" || fail "$1: not valid UTF-8 JSON: $(tail -1 "$T/json.err")"
}
run "$T/out" "$T/err" "$APR_BIN/apr-detect" --json "$odd"
json_ok "8: apr detect --json" "$T/out"
run "$T/out" "$T/err" "$APR_BIN/apr-inspect" --json "$odd"
json_ok "8: apr inspect --json" "$T/out"
run "$T/out" "$T/err" "$APR_BIN/apr-tensors" --json "$odd"
json_ok "8: apr tensors --json" "$T/out"
run "$T/out" "$T/err" "$Q" --json --dry-run "$odd" q4_0
json_ok "8: apr quantize --json" "$T/out"
note "8: --json with a non-UTF-8 path: valid JSON, U+FFFD, in detect, inspect, tensors, quantize"

# ---- 9. pipes and FIFOs as input -------------------------------------------------------------
mkfifo "$T/in.fifo"
tools=(detect inspect tensors)
[ -x "$APR_BIN/apr-hex" ] && tools+=(hex)
[ "$VALGRIND" = 1 ] && tools=(inspect)
for tool in "${tools[@]}"; do
  run "$T/out" "$T/err" timeout 60 "$APR_BIN/apr-$tool" <(cat "$FX/model.safetensors")
  expect "9: apr $tool <(cat ...)" 3 $?
  has "9: apr $tool pipe" "$T/err" "not a regular file"
  run "$T/out" "$T/err" timeout 60 "$APR_BIN/apr-$tool" "$T/in.fifo"
  expect "9: apr $tool FIFO" 3 $?
  has "9: apr $tool FIFO" "$T/err" "not a regular file"
done
run "$T/out" "$T/err" timeout 60 "$Q" <(cat "$T/q8.gguf") "$T/pipe.gguf" q8_0
expect "9: apr quantize <(cat ...)" 3 $?
has "9: apr quantize pipe" "$T/err" "not a regular file"
note "9: pipes and FIFOs: exit 3 'not a regular file' in every tool: $(cat "$T/err")"

# ---- 10. the output path checked before the work ---------------------------------------------
run "$T/out" "$T/err" "$Q" --format safetensors "$FX" "$T/hfout/" f16
expect "10: OUT with a trailing slash (a new HF directory)" 0 $?
[ -f "$T/hfout/model.safetensors" ] && [ -f "$T/hfout/config.json" ] ||
  fail "10: hfout/ was not written as a Hugging Face directory"
mkdir -p "$T/exists.gguf"
run "$T/out" "$T/err" "$Q" "$FX" "$T/exists.gguf" q8_0
expect "10: OUT an existing directory" 2 $?
[ -s "$T/out" ] && fail "10: an existing directory as OUT was refused only after the work"
[ "$(grep -o "$T/exists.gguf" "$T/err" | wc -l)" -eq 1 ] || fail "10: path not named once: $(cat "$T/err")"
run "$T/out" "$T/err" "$Q" "$FX" "$T/no-such-dir/x.gguf" q8_0
expect "10: OUT in a missing directory" 4 $?
has "10: missing directory" "$T/err" "$T/no-such-dir/x.gguf: "
grep -q "rosetta-spill\|tmp-" "$T/err" && fail "10: a temp file named instead of OUT: $(cat "$T/err")"
[ -s "$T/out" ] && fail "10: a missing directory was found only after the work"
run "$T/out" "$T/err" "$Q" "$FX" "$T/x.gguf/" q8_0
expect "10: a file OUT with a trailing slash" 2 $?
has "10: a file OUT with a trailing slash" "$T/err" "$T/x.gguf/: ends in '/'"
note "10: output checked first: $(cat "$T/err")"

# ---- CLI polish ------------------------------------------------------------------------------
run "$T/out" "$T/err" "$Q" "$FX" "$T/polish.gguf" q4_0
expect "polish: quantize" 0 $?
tail -1 "$T/err" | grep -qE "^apr-quantize: wrote $T/polish.gguf: 27 tensors, [0-9.]+ [KM]iB, [0-9.]+ s$" ||
  fail "polish: success line: $(tail -1 "$T/err")"
run "$T/out" "$T/err" "$Q" "$T/q8.gguf" "$T/requant.gguf" q4_0
expect "polish: requantize" 0 $?
[ "$(grep -c "requantized" "$T/err")" -eq 1 ] || fail "polish: requantization warned $(grep -c requantized "$T/err") times"
has "polish: requantize" "$T/err" "Q8_0 -> Q4_0: "
run "$T/out" "$T/err" "$Q" "$FX" "$T/x.gguf" q8_0 --tensor-type
expect "polish: missing option argument" 2 $?
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "polish: option error takes $(wc -l <"$T/err") lines"
has "polish: option error" "$T/err" "apr-quantize: --tensor-type requires an argument"
opts=(--override-kv=a=int:1 --keep-split --include-weights=x --exclude-weights=x --prune-layers=1)
[ "$VALGRIND" = 1 ] && opts=(--override-kv=a=int:1)
for opt in "${opts[@]}"; do
  run "$T/out" "$T/err" "$Q" "$opt" "$FX" "$T/x.gguf" q8_0
  expect "polish: $opt" 2 $?
  has "polish: $opt" "$T/err" "not supported by apr quantize"
done
mkdir -p "$T/empty" "$T/dir-named.gguf"
run "$T/out" "$T/err" "$APR_BIN/apr-inspect" "$T/empty"
expect "polish: empty directory" 3 $?
has "polish: empty directory" "$T/err" "no model files in the directory"
run "$T/out" "$T/err" "$APR_BIN/apr-inspect" "$T/dir-named.gguf"
expect "polish: directory named x.gguf" 3 $?
has "polish: x.gguf directory" "$T/err" "is a directory"
run "$T/out" "$T/err" "$Q" "$T/q8.gguf" "$T/single.safetensors" f32
has "polish: GGUF to one .safetensors" "$T/err" "config and the tokenizer of the input are left out"
"$APR_BIN/apr-inspect" "$T/polish.gguf" >"$T/out" 2>&1
has "polish: file type" "$T/out" "Q4_0 (general.file_type 2)"
if [ "$VALGRIND" != 1 ]; then
  run "$T/out" "$T/err" "$Q" -q "$T/q8.gguf" "$T/single.safetensors" f32
  expect "polish: -q, GGUF to one .safetensors" 0 $?
  [ -s "$T/err" ] && fail "polish: -q printed on stderr: $(cat "$T/err")"
  "$Q" -q "$FX" "$T/q4km.gguf" q4_k_m >/dev/null 2>&1
  "$APR_BIN/apr-inspect" "$T/q4km.gguf" >"$T/out" 2>&1
  has "polish: file type 15" "$T/out" "Q4_K - Medium (general.file_type 15)"
fi
note "polish: success line, one requantization warning, option errors, directory inputs, file type names"

# ---- the convert tools: apr convert, apr import, apr export ----------------------------------
# Every case above again, through rf_convert's front end (tools/common/convert_cli.c); under
# Valgrind once per code path (apr convert only: the three tools share the front end).
ctools=(convert import export)
[ "$VALGRIND" = 1 ] && ctools=(convert)
C="$APR_BIN/apr-convert"
I="$APR_BIN/apr-import"
E="$APR_BIN/apr-export"
"$I" -q "$T/q8.gguf" -o "$T/q8.apr" >/dev/null 2>"$T/err" || fail "convert tools: import: $(cat "$T/err")"
# 1: special files at OUT (--to / --format gguf: a directory is refused as a file output)
for node in "${specials[@]}"; do
  before=$(stat -c %F "$node")
  for tool in "${ctools[@]}"; do
    case $tool in
      convert) cmd=("$C" "$FX" -o "$node" --to gguf) ;;
      import) cmd=("$I" "$T/q8.gguf" -o "$node") ;;
      export) cmd=("$E" "$T/q8.apr" -o "$node" --format gguf) ;;
    esac
    run "$T/out" "$T/err" timeout 60 "${cmd[@]}"
    expect "1: apr $tool -o $node" 2 $?
    has "1: apr $tool -o $node" "$T/err" "$node: is "
    has "1: apr $tool -o $node" "$T/err" "not a regular file"
    [ -s "$T/out" ] && fail "1: apr $tool -o $node: the summary was printed: the check must come first"
    [ "$(stat -c %F "$node")" = "$before" ] || fail "1: apr $tool replaced $node by a $(stat -c %F "$node")"
  done
done
if [ "$VALGRIND" != 1 ]; then
  run "$T/out" "$T/err" timeout 60 "$C" --chain st,apr "$FX" -o "$T/nodes/fifo"
  expect "1: apr convert --chain -o FIFO" 2 $?
  has "1: --chain" "$T/err" "is a FIFO"
  [ -p "$T/nodes/fifo" ] || fail "1: apr convert --chain replaced the FIFO"
fi
note "1 (convert tools): OUT = ${#specials[@]} special files: exit 2 in apr convert, import, export"

# 2: OUT is one of the input's files
cp -r "$FX" "$T/own2"
run "$T/out" "$T/err" "$C" "$T/own2" -o "$T/own2/model.safetensors"
expect "2: apr convert -o the input's weights" 2 $?
has "2: convert weights" "$T/err" "is a file of the input model"
cmp -s "$T/own2/model.safetensors" "$T/original.safetensors" || fail "2: apr convert changed the input's weights"
run "$T/out" "$T/err" "$C" "$T/own2" -o "$T/own2/config.json" --to gguf
expect "2: apr convert -o the input's config.json" 2 $?
cmp -s "$T/own2/config.json" "$FX/config.json" || fail "2: apr convert changed the input's config.json"
if [ "$VALGRIND" != 1 ]; then
  cp "$T/q8.apr" "$T/self.apr"
  run "$T/out" "$T/err" "$E" "$T/self.apr" -o "$T/self.apr" --format gguf
  expect "2: apr export -o IN.apr" 2 $?
  cmp -s "$T/self.apr" "$T/q8.apr" || fail "2: apr export changed its input"
  run "$T/out" "$T/err" "$C" "$T/own2" -o "$T/own2"
  expect "2: apr convert -o the input's directory" 2 $?
  has "2: convert directory" "$T/err" "is the directory of the input model"
  cp "$T/q8.gguf" "$T/self.gguf"
  ln "$T/self.gguf" "$T/self-link.apr"
  run "$T/out" "$T/err" "$I" "$T/self.gguf" -o "$T/self-link.apr"
  expect "2: apr import -o a hard link to IN" 2 $?
  cmp -s "$T/self.gguf" "$T/q8.gguf" || fail "2: apr import changed its input"
fi
run "$T/out" "$T/err" "$C" -q --force "$T/own2" -o "$T/own2/model.safetensors" --quantize f16
expect "2: apr convert --force" 0 $?
"$APR_BIN/apr-tensors" "$T/own2/model.safetensors" >"$T/out" 2>"$T/err" || fail "2: apr convert --force wrote a bad file"
grep -q " F16 " "$T/out" || fail "2: apr convert --force: the input was not replaced by the F16 output"
[ "$(temps "$T/own2/model.safetensors")" -eq 0 ] || fail "2: apr convert --force left a temp file"
note "2 (convert tools): OUT = an input file or directory: exit 2; --force replaces it"

# 3: the input truncated while it is read (also while the APR reader scans it)
if [ "$VALGRIND" != 1 ] && [ -f "$PRELOAD" ]; then
  cp "$T/q8.gguf" "$T/cv.gguf"
  truncated "$T/cv.gguf" 200000 "$C" "$T/cv.gguf" -o "$T/cv.apr"
  expect "3: apr convert, input truncated" 3 $?
  has "3: convert" "$T/err" "file changed while in use"
  [ -e "$T/cv.apr" ] && fail "3: apr convert left an output"
  [ "$(temps "$T/cv.apr")" -eq 0 ] || fail "3: apr convert left a temp file"
  cp -r "$FX" "$T/iv"
  truncated "$T/iv/model.safetensors" 100000 "$I" "$T/iv" -o "$T/iv.apr"
  expect "3: apr import, input truncated" 3 $?
  has "3: import" "$T/err" "file changed while in use"
  for keep in 3000 100000; do
    cp "$T/q8.apr" "$T/ev.apr"
    truncated "$T/ev.apr" $keep "$E" "$T/ev.apr" -o "$T/ev.gguf"
    expect "3: apr export, input truncated to $keep" 3 $?
    has "3: export $keep" "$T/err" "file changed while in use"
    [ -e "$T/ev.gguf" ] && fail "3: apr export left an output"
  done
  cp "$T/q8.gguf" "$T/gv.gguf"
  truncated "$T/gv.gguf" 3000 "$APR_BIN/apr-inspect" "$T/gv.gguf"
  expect "3: apr inspect, GGUF truncated inside its metadata" 3 $?
  has "3: inspect metadata" "$T/err" "file changed while in use"
  note "3 (convert tools): truncated while read: exit 3 in apr convert, import, export"
fi

# 4: stdout closed
rm -f "$T/p2.gguf"
closed_stdout "$C" "$FX" -o "$T/p2.gguf"
expect "4: apr convert, stdout closed" 0 $?
"$APR_BIN/apr-tensors" "$T/p2.gguf" >/dev/null 2>&1 || fail "4: apr convert, stdout closed: no complete output"
grep -q "Broken pipe" "$T/err" && fail "4: apr convert: EPIPE reported as an error: $(cat "$T/err")"
if [ "$VALGRIND" != 1 ]; then
  rm -f "$T/p2.apr"
  closed_stdout "$I" --json "$T/q8.gguf" -o "$T/p2.apr"
  expect "4: apr import --json, stdout closed" 4 $?
  [ -s "$T/p2.apr" ] || fail "4: apr import --json, stdout closed: the output was not written"
fi
note "4 (convert tools): stdout closed: exit 0 with the output, --json exit 4"

# 5: ulimit -f, a file and a directory output
if [ "$VALGRIND" != 1 ]; then
  for out in "$T/uf2.gguf" "$T/uf2-hf"; do
    (ulimit -f 1000 && exec "$C" -q "$FX" -o "$out") >/dev/null 2>"$T/err"
    expect "5: apr convert -o $out under ulimit -f" 4 $?
    has "5: apr convert -o $out" "$T/err" "file size limit"
    [ -e "$out" ] && fail "5: apr convert under ulimit -f left $out"
    [ "$(temps "$out")" -eq 0 ] || fail "5: apr convert under ulimit -f left a temp file or staging directory"
  done
  note "5 (convert tools): ulimit -f: exit 4, nothing left"
fi

# 6: SIGINT/SIGTERM while apr convert writes a file or a Hugging Face directory
if [ "$VALGRIND" != 1 ] && [ -f "$PRELOAD" ]; then
  for sig in INT TERM; do
    want=$((128 + $(kill -l $sig)))
    for out in "$T/sig2.gguf" "$T/sig2-hf"; do
      HOSTILE_SLOW_WRITE_MS=300 LD_PRELOAD="$PRELOAD" \
        ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
        default_sigint "$C" -q "$FX" -o "$out" >/dev/null 2>&1 &
      pid=$!
      wait_temp "$out" $pid || fail "6: apr convert -o $out made no temp file"
      sleep 0.2 # into the slow writes
      kill -$sig $pid
      wait $pid
      rc=$?
      [ $rc -eq $want ] || fail "6: apr convert -o $out, SIG$sig: exit $rc, expected $want"
      [ "$(temps "$out")" -eq 0 ] || fail "6: apr convert -o $out, SIG$sig: temp file or staging directory left: $(ls -d "$out".tmp-* 2>/dev/null)"
      [ -e "$out" ] && fail "6: apr convert -o $out, SIG$sig: an output appeared"
    done
  done
  note "6 (convert tools): SIGINT/SIGTERM during a file or directory write: exit 130/143, nothing left"
fi

# 7: GGUF output of a GGUF without general.architecture
run "$T/out" "$T/err" "$C" "$T/noarch.gguf" -o "$T/noarch-c.gguf"
expect "7: apr convert noarch.gguf -o .gguf" 5 $?
has "7: convert" "$T/err" "rule gguf.architecture"
[ -s "$T/out" ] && fail "7: apr convert: refused only after the work"
[ -e "$T/noarch-c.gguf" ] && fail "7: apr convert wrote a GGUF llama.cpp cannot load"
note "7 (convert tools): no architecture: exit 5 before any work"

# 8: --json with a non-UTF-8 path
run "$T/out" "$T/err" "$C" --json "$odd" -o "$T/odd-out.apr"
json_ok "8: apr convert --json" "$T/out"
if [ "$VALGRIND" != 1 ]; then
  run "$T/out" "$T/err" "$I" --json "$odd" -o "$T/odd-out2.apr"
  json_ok "8: apr import --json" "$T/out"
fi
note "8 (convert tools): --json with a non-UTF-8 path: valid JSON"

# 9: pipes and FIFOs as input
run "$T/out" "$T/err" timeout 60 "$C" <(cat "$T/q8.gguf") -o "$T/pipe.apr"
expect "9: apr convert <(cat ...)" 3 $?
has "9: apr convert pipe" "$T/err" "not a regular file"
if [ "$VALGRIND" != 1 ]; then
  run "$T/out" "$T/err" timeout 60 "$I" "$T/in.fifo" -o "$T/pipe.apr"
  expect "9: apr import FIFO" 3 $?
  run "$T/out" "$T/err" timeout 60 "$E" "$T/in.fifo" -o "$T/pipe.gguf"
  expect "9: apr export FIFO" 3 $?
  has "9: apr export FIFO" "$T/err" "not a regular file"
fi
note "9 (convert tools): pipes and FIFOs: exit 3"

# 10: the output path checked before the work
run "$T/out" "$T/err" "$C" "$FX" -o "$T/no-such-dir/x.gguf"
expect "10: apr convert into a missing directory" 4 $?
has "10: convert missing directory" "$T/err" "$T/no-such-dir/x.gguf: "
grep -q "spill\|tmp-" "$T/err" && fail "10: apr convert named a temp file: $(cat "$T/err")"
[ -s "$T/out" ] && fail "10: apr convert: a missing directory was found only after the work"
if [ "$VALGRIND" != 1 ]; then
  run "$T/out" "$T/err" "$C" "$FX" -o "$T/exists.gguf" --to gguf
  expect "10: apr convert --to gguf -o an existing directory" 2 $?
  [ "$(grep -o "$T/exists.gguf" "$T/err" | wc -l)" -eq 1 ] || fail "10: path not named once: $(cat "$T/err")"
  run "$T/out" "$T/err" "$E" "$T/q8.apr" -o "$T/x.gguf/" --format gguf
  expect "10: apr export --format gguf -o x.gguf/" 2 $?
  run "$T/out" "$T/err" "$C" --chain st,apr "$FX" -o "$T/no-such-dir/chain"
  expect "10: apr convert --chain into a missing directory" 4 $?
  run "$T/out" "$T/err" "$E" "$T/q8.apr" -o "$T/hfout2/"
  expect "10: apr export -o hfout2/" 0 $?
  [ -f "$T/hfout2/model.safetensors" ] && [ -f "$T/hfout2/config.json" ] ||
    fail "10: apr export -o hfout2/ did not write a Hugging Face directory"
fi
note "10 (convert tools): output checked first"

# CLI polish: success line, -q, one-line option errors
run "$T/out" "$T/err" "$C" "$FX" -o "$T/ok.gguf"
expect "polish: apr convert" 0 $?
tail -1 "$T/err" | grep -qE "^apr-convert: wrote $T/ok.gguf: 27 tensors, [0-9.]+ [KM]iB, [0-9.]+ s$" ||
  fail "polish: apr convert success line: $(tail -1 "$T/err")"
if [ "$VALGRIND" != 1 ]; then
  run "$T/out" "$T/err" "$E" "$T/q8.apr" -o "$T/ok-hf"
  tail -1 "$T/err" | grep -qE "^apr-export: wrote $T/ok-hf: [0-9]+ tensors, [0-9.]+ [KM]iB, [0-9.]+ s$" ||
    fail "polish: apr export success line: $(tail -1 "$T/err")"
  run "$T/out" "$T/err" "$I" -q "$T/q8.gguf" -o "$T/ok.apr"
  expect "polish: apr import -q" 0 $?
  [ -s "$T/err" ] && fail "polish: apr import -q printed on stderr: $(cat "$T/err")"
fi
opt_cases=("convert|$FX -o|-o requires an argument" "import|--frobnicate $FX|unknown option '--frobnicate'"
  "export|$T/q8.apr -o x.gguf --format|--format requires an argument")
[ "$VALGRIND" = 1 ] && opt_cases=("${opt_cases[0]}")
for args in "${opt_cases[@]}"; do
  IFS='|' read -r tool argv want <<<"$args"
  # shellcheck disable=SC2086
  run "$T/out" "$T/err" "$APR_BIN/apr-$tool" $argv
  expect "polish: apr $tool option error" 2 $?
  [ "$(wc -l <"$T/err")" -eq 1 ] || fail "polish: apr $tool: option error takes $(wc -l <"$T/err") lines"
  has "polish: apr $tool option error" "$T/err" "apr-$tool: $want"
done
note "polish (convert tools): success lines, -q, one-line option errors"

if [ $fails -gt 0 ]; then
  echo "hostile: $fails failure(s)" >&2
  exit 1
fi
echo "hostile: ok"
