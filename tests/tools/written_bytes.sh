#!/usr/bin/env bash
# Byte-identity guard: every file Rosetta's writers and `apr quantize` produce from the fixtures
# (each mix into each output format, from SafeTensors, GGUF and APR sources, requantization, the
# plan options, an importance matrix, SafeTensors directories), plus the plan printed on stdout,
# is hashed and compared with the reference list tests/data/written_bytes.txt, which was computed
# before the pipeline moved into the library. A refactor must not change one byte; a change that
# is meant to change output regenerates the list (say why in the commit):
#
#   APR_BIN=build/bin ROSETTA_ROOT=$PWD ROSETTA_BUILD=build TEST_TMP=build/test-tmp \
#     bash tests/tools/written_bytes.sh --update
#
# Each line of the list is: case, exit code, sha256 of stdout, then file=sha256 for every file
# the case wrote. Cases run in a scratch directory with relative paths, so plans and names do
# not depend on where the tree lives.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"

if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  # ~300 writes under memcheck would take many minutes; tools/quantize covers the same code.
  echo "SKIP: written_bytes under ROSETTA_VALGRIND (bytes, not memory; tools/quantize covers it)" >&2
  exit 77
fi
REF="$ROSETTA_ROOT/tests/data/written_bytes.txt"
update=0
[ "${1:-}" = "--update" ] && update=1
# Under ASan+UBSan (make test-asan) a third of the cases run (each is several times slower
# there); they are compared with their lines of the full list.
reduced=0
if [ "$update" = 0 ] && grep -q '^ROSETTA_SANITIZE:BOOL=ON' "$ROSETTA_BUILD/CMakeCache.txt" 2>/dev/null; then
  reduced=1
fi

T="$TEST_TMP/written_bytes"
rm -rf "$T"
mkdir -p "$T/fx"
cd "$T"
for fx in tiny-qwen2 tiny-qwen2-odd tiny-qwen2-tied; do
  ln -s "$ROSETTA_ROOT/fixtures/$fx" "fx/$fx"
done
Q="$APR_BIN/apr-quantize"
WF="$ROSETTA_BUILD/tests/write_formats"
[ -x "$Q" ] && [ -x "$WF" ] || { echo "written_bytes: FAIL: apr-quantize or write_formats not built" >&2; exit 1; }
LIST="$T/list.txt"
: >"$LIST"

sha() { sha256sum "$1" | cut -c1-64; }

# run CASE OUTPUT... -- COMMAND...: runs COMMAND, records its exit code, the hash of its stdout
# and the hash of each OUTPUT (a directory: each file in it, sorted) that exists afterwards.
run() {
  local name=$1
  shift
  local outs=()
  while [ "$1" != "--" ]; do
    outs+=("$1")
    shift
  done
  shift
  set +e
  "$@" >"$T/stdout" 2>"$T/stderr"
  local rc=$?
  set -e
  local line="$name rc=$rc stdout=$(sha "$T/stdout")"
  local o f
  for o in "${outs[@]}"; do
    if [ -d "$o" ]; then
      while IFS= read -r f; do
        line+=" $f=$(sha "$f")"
      done < <(find "$o" -type f | LC_ALL=C sort)
    elif [ -e "$o" ]; then
      line+=" $o=$(sha "$o")"
    fi
  done
  echo "$line" >>"$LIST"
}

MIXES=(q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k f16 bf16
  f32)
FEW=(q8_0 q4_0 q2_k q4_k_m q5_k_s q6_k f16 bf16 f32)

# 1. the library writers as they are (write_formats: rf_gguf_write / rf_apr_write)
for fx in tiny-qwen2 tiny-qwen2-odd tiny-qwen2-tied; do
  run "wf:$fx" "$fx.gguf" "$fx.apr" -- "$WF" "fx/$fx" --gguf "$fx.gguf" --apr "$fx.apr"
  run "wf:$fx.apr" "$fx.apr.gguf" -- "$WF" "$fx.apr" --gguf "$fx.apr.gguf"
  run "wf:$fx.gguf" "$fx.gguf.apr" -- "$WF" "$fx.gguf" --apr "$fx.gguf.apr"
done

# 2. every mix into every format from the SafeTensors fixtures
ALL_FX=(tiny-qwen2 tiny-qwen2-odd tiny-qwen2-tied)
[ "$reduced" = 1 ] && ALL_FX=(tiny-qwen2-odd) && MIXES=("${FEW[@]}")
for fx in "${ALL_FX[@]}"; do
  for mix in "${MIXES[@]}"; do
    for ext in gguf apr safetensors; do
      run "q:$fx:$mix:$ext" "q-$fx-$mix.$ext" -- "$Q" -q -t 2 "fx/$fx" "q-$fx-$mix.$ext" "$mix"
    done
  done
done

# 3. from GGUF and APR sources (the tied fixture's APR carries lm_head.weight)
SRC_FX=(tiny-qwen2 tiny-qwen2-tied)
[ "$reduced" = 1 ] && SRC_FX=(tiny-qwen2-tied) && FEW=(q8_0 q4_k_m f16)
for fx in "${SRC_FX[@]}"; do
  for src in "$fx.gguf" "$fx.apr"; do
    for mix in "${FEW[@]}"; do
      for ext in gguf apr safetensors; do
        run "q:$src:$mix:$ext" "q-$src-$mix.$ext" -- "$Q" -q -t 2 "$src" "q-$src-$mix.$ext" "$mix"
      done
    done
  done
done

# 4. requantizing a quantized GGUF
qsrc=q-tiny-qwen2-q4_k_m.gguf
[ "$reduced" = 1 ] && "$Q" -q fx/tiny-qwen2 "$qsrc" q4_k_m >/dev/null
for mix in q4_k_m q8_0 q6_k f16 f32; do
  for ext in gguf apr safetensors; do
    run "rq:$mix:$ext" "rq-$mix.$ext" -- "$Q" -q --allow-requantize "$qsrc" "rq-$mix.$ext" "$mix"
  done
done

# 5. plan options, on the even and the odd-width fixture
OPT_FX=(tiny-qwen2 tiny-qwen2-odd)
[ "$reduced" = 1 ] && OPT_FX=(tiny-qwen2-odd)
for fx in "${OPT_FX[@]}"; do
  run "opt:$fx:pure" "o-$fx-pure.gguf" -- "$Q" -q --pure "fx/$fx" "o-$fx-pure.gguf" q4_k_m
  run "opt:$fx:leave" "o-$fx-leave.gguf" -- "$Q" -q --leave-output-tensor "fx/$fx" \
    "o-$fx-leave.gguf" q4_k_m
  run "opt:$fx:output-type" "o-$fx-ot.gguf" -- "$Q" -q --output-tensor-type q8_0 "fx/$fx" \
    "o-$fx-ot.gguf" q4_k_m
  run "opt:$fx:embd-type" "o-$fx-et.gguf" -- "$Q" -q --token-embedding-type q4_0 "fx/$fx" \
    "o-$fx-et.gguf" q4_k_m
  run "opt:$fx:tensor-type" "o-$fx-tt.gguf" -- "$Q" -q --tensor-type 'attn_v=q8_0' \
    --tensor-type 'ffn_(up|gate)=q5_k' "fx/$fx" "o-$fx-tt.gguf" q4_k_m
  run "opt:$fx:apr-q6k" "o-$fx-q6k.apr" -- "$Q" -q --tensor-type '.=q6_k' "fx/$fx" \
    "o-$fx-q6k.apr" q6_k
  run "opt:$fx:dry-text" -- "$Q" --dry-run "fx/$fx" q4_k_m
  run "opt:$fx:dry-json" -- "$Q" --dry-run --json "fx/$fx" q4_k_m
  run "opt:$fx:json" "o-$fx-json.gguf" -- "$Q" -q --json "fx/$fx" "o-$fx-json.gguf" q5_k_m
  run "opt:$fx:text" "o-$fx-text.gguf" -- "$Q" "fx/$fx" "o-$fx-text.gguf" q3_k_m
done

# 6. an importance matrix (legacy .dat: one entry per 2-D weight, deterministic values, a dataset)
"$Q" --dry-run --json fx/tiny-qwen2-odd q8_0 >plan-odd.json
"$Q" --dry-run --json fx/tiny-qwen2 q8_0 >plan-even.json
python3 - plan-odd.json odd.dat plan-even.json even.dat <<'PY'
import json, struct, sys
for plan, out in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    tensors = [t for t in json.load(open(plan))["tensors"] if len(t["shape"]) == 2]
    with open(out, "wb") as f:
        f.write(struct.pack("<i", len(tensors)))
        for k, t in enumerate(tensors):
            name = t["name"].encode()
            n = t["shape"][-1]
            f.write(struct.pack("<i", len(name)) + name + struct.pack("<ii", 3, n))
            f.write(struct.pack("<%df" % n, *[3.0 * (1.0 + ((i * 7 + k * 13) % 29)) for i in range(n)]))
        ds = b"written_bytes.txt"
        f.write(struct.pack("<ii", 10, len(ds)) + ds)
PY
IM_MIXES=(q4_k_m q2_k q4_0 q5_1 q3_k_s q6_k)
[ "$reduced" = 1 ] && IM_MIXES=(q4_k_m q2_k q5_1)
for mix in "${IM_MIXES[@]}"; do
  run "im:odd:$mix" "im-odd-$mix.gguf" -- "$Q" -q --imatrix odd.dat fx/tiny-qwen2-odd \
    "im-odd-$mix.gguf" "$mix"
  run "im:even:$mix" "im-even-$mix.gguf" -- "$Q" -q --imatrix even.dat fx/tiny-qwen2 \
    "im-even-$mix.gguf" "$mix"
done

# 7. SafeTensors checkpoint directories (companion files included)
for fx in tiny-qwen2 tiny-qwen2-tied; do
  for mix in f16 bf16 f32; do
    run "stdir:$fx:$mix" "d-$fx-$mix" -- "$Q" -q --format safetensors "fx/$fx" "d-$fx-$mix" "$mix"
  done
  run "stdir:$fx.gguf" "d-$fx.gguf" -- "$Q" -q --format safetensors "$fx.gguf" "d-$fx.gguf" f32
done

n=$(wc -l <"$LIST")
if [ "$update" = 1 ]; then
  cp "$LIST" "$REF"
  echo "written_bytes: wrote $n cases to $REF"
  exit 0
fi
[ -f "$REF" ] || { echo "written_bytes: FAIL: no reference list $REF" >&2; exit 1; }
if [ "$reduced" = 1 ]; then
  # every case run must have exactly its line of the full list
  LC_ALL=C sort "$LIST" >"$T/run.sorted"
  LC_ALL=C sort "$REF" >"$T/ref.sorted"
  LC_ALL=C comm -23 "$T/run.sorted" "$T/ref.sorted" >"$T/diff"
  if [ -s "$T/diff" ]; then
    echo "written_bytes: FAIL: these cases differ from the reference list:" >&2
    head -40 "$T/diff" >&2
    exit 1
  fi
  echo "written_bytes: $n cases (the sanitizer subset) byte-identical to tests/data/written_bytes.txt"
  rm -rf "$T"
  exit 0
fi
if ! diff -u "$REF" "$LIST" >"$T/diff"; then
  echo "written_bytes: FAIL: output differs from the reference list (- reference, + now):" >&2
  grep '^[-+][^-+]' "$T/diff" | head -40 >&2
  exit 1
fi
echo "written_bytes: $n cases byte-identical to tests/data/written_bytes.txt"
rm -rf "$T"
