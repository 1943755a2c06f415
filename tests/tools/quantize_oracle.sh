#!/usr/bin/env bash
# Oracle test of `apr quantize` against llama.cpp's own llama_model_quantize() (built from the
# pinned llama-cpp-python sdist by scripts/build-llama-oracle, driven by tests/oracle/
# llama_quantize.c). Both quantize the same F32 GGUF; the outputs must have the same tensors in
# the same order with the same types and bytes, the same metadata, and be identical files.
#   1. the fixtures (F32 GGUF written by `apr quantize FIXTURE OUT f32`), mixes q4_k_m, q8_0,
#      q4_k_s, q5_k_s, q5_k_m, q6_k, q4_0, q5_0; and q4_k_m straight from the SafeTensors fixture
#   2. synthetic Qwen2 GGUFs written by gguf-py (16 and 9 layers, rows of 256, 160 and 200
#      elements, tied and untied) under every mix Rosetta offers and the type options
#   3. importance matrices (GGUF and legacy .dat) for the K-quant and 32-element mixes
# Needs python3 with numpy and gguf (installed by `make test`), a C compiler, and the oracle build
# (a few minutes the first time, cached in the build tree). ROSETTA_SKIP_LLAMA_ORACLE=1 skips;
# an oracle that cannot be built is a SKIP, or a failure under ROSETTA_ORACLE_REQUIRED=1 (CI).
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${ROSETTA_BUILD:?}" "${TEST_TMP:?}"

if [ "${ROSETTA_SKIP_LLAMA_ORACLE:-0}" = 1 ]; then
  echo "SKIP: ROSETTA_SKIP_LLAMA_ORACLE=1: the llama.cpp quantize oracle was not run" >&2
  exit 77
fi
if [ "${ROSETTA_VALGRIND:-0}" = 1 ]; then
  # The byte comparison itself is the same under memcheck; tools/quantize runs apr quantize
  # under Valgrind, so the 100+ oracle cases are not repeated there (CI time).
  echo "SKIP: under make test-valgrind the oracle comparison is not repeated (tools/quantize covers apr quantize)" >&2
  exit 77
fi
if ! python3 -c 'import numpy, gguf' 2>/dev/null; then
  echo "SKIP: python3 with numpy and gguf is needed (make test installs them)" >&2
  exit 77
fi

T="$TEST_TMP/quantize_oracle"
rm -rf "$T"
mkdir -p "$T"
APR="$APR_BIN/apr-quantize"

# shellcheck source=tests/oracle/oracle_build.sh
. "$ROSETTA_ROOT/tests/oracle/oracle_build.sh"
oracle_install quantize_oracle llama
install=$oracle_dir
harness="$ROSETTA_BUILD/oracle/llama/llama_quantize"
src="$ROSETTA_ROOT/tests/oracle/llama_quantize.c"
if [ ! -x "$harness" ] || [ "$src" -nt "$harness" ] || [ "$install/VERSION" -nt "$harness" ]; then
  cc -std=c11 -O1 -Wall -Wextra -Werror -I"$install/include" "$src" -o "$harness.tmp" \
    -L"$install/lib" -lllama -lggml -lggml-base -lm -Wl,-rpath,"$install/lib"
  mv "$harness.tmp" "$harness"
fi

cat >"$T/oracle.py" <<'PY'
"""Helpers of quantize_oracle.sh: synthetic GGUFs and imatrices (gguf-py), and the comparison."""
import struct
import sys

import numpy as np
import gguf


def synth(path, layers, hidden, ff, heads, kv, vocab, tied, seed):
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path, "qwen2")
    w.add_block_count(layers)
    w.add_context_length(4096)
    w.add_embedding_length(hidden)
    w.add_feed_forward_length(ff)
    w.add_head_count(heads)
    w.add_head_count_kv(kv)
    w.add_rope_freq_base(1e6)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_file_type(0)
    hd = hidden // heads

    def t(name, *shape):
        scale = 1.0 if len(shape) == 1 else 0.05
        data = (rng.standard_normal(shape) * scale).astype(np.float32)
        if len(shape) == 2 and name.endswith("attn_q.weight"):
            data[3, :] = 0.0            # an all-zero row
            data[5, :] = 0.125          # a constant row
        w.add_tensor(name, data)

    # Hugging Face order, as a converter writes it (llama-quantize re-orders by layer)
    t("token_embd.weight", vocab, hidden)
    for i in range(layers):
        p = f"blk.{i}."
        t(p + "attn_norm.weight", hidden)
        t(p + "attn_q.weight", heads * hd, hidden)
        t(p + "attn_q.bias", heads * hd)
        t(p + "attn_k.weight", kv * hd, hidden)
        t(p + "attn_k.bias", kv * hd)
        t(p + "attn_v.weight", kv * hd, hidden)
        t(p + "attn_v.bias", kv * hd)
        t(p + "attn_output.weight", hidden, heads * hd)
        t(p + "ffn_norm.weight", hidden)
        t(p + "ffn_gate.weight", ff, hidden)
        t(p + "ffn_up.weight", ff, hidden)
        t(p + "ffn_down.weight", hidden, ff)
    t("output_norm.weight", hidden)
    if not tied:
        t("output.weight", vocab, hidden)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def imatrix(model_path, out_gguf, out_dat, seed):
    """Random positive importances for every 2-D weight but token_embd, in both file forms."""
    rng = np.random.default_rng(seed)
    r = gguf.GGUFReader(model_path)
    entries = []
    for t in r.tensors:
        if len(t.shape) < 2 or not t.name.endswith(".weight") or t.name == "token_embd.weight":
            continue
        ne0 = int(t.shape[0])
        count = 7 + len(entries) % 5
        sums = (rng.random(ne0) * 4.0 + 0.01).astype(np.float32) * np.float32(count)
        entries.append((t.name, sums, count))
    w = gguf.GGUFWriter(out_gguf, "qwen2")   # gguf-py always writes general.architecture
    w.add_type("imatrix")
    w.add_array("imatrix.datasets", ["synthetic.txt"])
    w.add_uint32("imatrix.chunk_count", 11)
    w.add_uint32("imatrix.chunk_size", 512)
    for name, sums, count in entries:
        w.add_tensor(name + ".in_sum2", sums.reshape(1, -1))
        w.add_tensor(name + ".counts", np.array([[count]], dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(out_dat, "wb") as f:
        f.write(struct.pack("<i", len(entries)))
        for name, sums, count in entries:
            b = name.encode()
            f.write(struct.pack("<i", len(b)) + b)
            f.write(struct.pack("<ii", count, len(sums)))
            f.write(sums.astype("<f4").tobytes())
        ds = b"synthetic.txt"
        f.write(struct.pack("<ii", 11, len(ds)) + ds)


def fields(r):
    out = []
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        out.append((k, [int(x) for x in f.types], bytes(np.concatenate([np.asarray(p).view(np.uint8).ravel() for p in f.parts]))))
    return out


def compare(a_path, b_path, label):
    """a = llama.cpp, b = Rosetta. Prints one summary line; exit status 1 on any difference."""
    a, b = gguf.GGUFReader(a_path), gguf.GGUFReader(b_path)
    problems = []
    an = [t.name for t in a.tensors]
    bn = [t.name for t in b.tensors]
    if an != bn:
        problems.append(f"tensor names/order differ: llama {an[:6]}... rosetta {bn[:6]}...")
    bt = {t.name: t for t in b.tensors}
    same_type = same_bytes = 0
    types = {}
    for t in a.tensors:
        u = bt.get(t.name)
        if u is None:
            problems.append(f"{t.name}: missing in Rosetta's output")
            continue
        if t.tensor_type == u.tensor_type:
            same_type += 1
        else:
            problems.append(f"{t.name}: type llama {t.tensor_type.name}, rosetta {u.tensor_type.name}")
        if list(t.shape) != list(u.shape):
            problems.append(f"{t.name}: shape llama {list(t.shape)}, rosetta {list(u.shape)}")
        ab, bb = bytes(np.asarray(t.data).view(np.uint8).ravel()), bytes(np.asarray(u.data).view(np.uint8).ravel())
        if ab == bb:
            same_bytes += 1
        else:
            diff = next(i for i in range(min(len(ab), len(bb))) if ab[i] != bb[i]) if len(ab) == len(bb) else -1
            problems.append(f"{t.name} ({t.tensor_type.name}): {len(ab)} vs {len(bb)} bytes, first difference at byte {diff}")
        types[t.tensor_type.name] = types.get(t.tensor_type.name, 0) + 1
    fa, fb = fields(a), fields(b)
    if [k for k, _, _ in fa] != [k for k, _, _ in fb]:
        problems.append(f"metadata keys differ: llama {[k for k, _, _ in fa]} rosetta {[k for k, _, _ in fb]}")
    else:
        for (k, ta, va), (_, tb, vb) in zip(fa, fb):
            if ta != tb or va != vb:
                problems.append(f"metadata {k} differs")
    with open(a_path, "rb") as f:
        ra = f.read()
    with open(b_path, "rb") as f:
        rb = f.read()
    same_file = ra == rb
    mix = " ".join(f"{k}:{v}" for k, v in sorted(types.items()))
    status = "OK" if not problems else "MISMATCH"
    print(f"{status} {label}: {len(an)} tensors compared, {same_type} same type, {same_bytes} same bytes, "
          f"metadata {'identical' if not any(p.startswith('metadata') for p in problems) else 'DIFFERENT'}, "
          f"files {'identical' if same_file else 'DIFFERENT'} ({len(ra)} bytes) [{mix}]")
    for p in problems[:20]:
        print("    " + p)
    if not problems and not same_file:
        print("    files differ although tensors and metadata agree (layout/padding)")
    return 0 if (not problems and same_file) else 1


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "synth":
        p = sys.argv[2:]
        synth(p[0], int(p[1]), int(p[2]), int(p[3]), int(p[4]), int(p[5]), int(p[6]), p[7] == "tied", int(p[8]))
    elif cmd == "imatrix":
        imatrix(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif cmd == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3], sys.argv[4]))
PY

failures=0
cases=0
# run LABEL IN MIX [options...]: quantize IN with both and compare
run() {
  local label=$1 in=$2 mix=$3
  shift 3
  local a="$T/llama.gguf" b="$T/rosetta.gguf"
  rm -f "$a" "$b"
  cases=$((cases + 1))
  if ! "$harness" "$@" "$in" "$a" "$mix" 2>"$T/llama.err"; then
    echo "FAIL $label: llama.cpp's quantize failed:"
    tail -n 20 "$T/llama.err"
    failures=$((failures + 1))
    return
  fi
  if ! "$APR" -q --threads 2 "$@" "$in" "$b" "$mix" >"$T/apr.out" 2>"$T/apr.err"; then
    echo "FAIL $label: apr quantize failed:"
    cat "$T/apr.err"
    failures=$((failures + 1))
    return
  fi
  if ! python3 "$T/oracle.py" compare "$a" "$b" "$label"; then
    failures=$((failures + 1))
  fi
}

# 1. the fixtures
for fx in tiny-qwen2 tiny-qwen2-tied tiny-qwen2-odd; do
  f32="$T/$fx.f32.gguf"
  "$APR" -q "$ROSETTA_ROOT/fixtures/$fx" "$f32" f32 >/dev/null
  for mix in q4_k_m q8_0 q4_k_s q5_k_s q5_k_m q6_k q4_0 q5_0; do
    run "$fx $mix" "$f32" "$mix"
  done
  # straight from the SafeTensors directory: the same file as through the F32 GGUF
  cases=$((cases + 1))
  "$harness" "$f32" "$T/llama.gguf" q4_k_m 2>/dev/null
  "$APR" -q "$ROSETTA_ROOT/fixtures/$fx" "$T/direct.gguf" q4_k_m >/dev/null
  if cmp -s "$T/llama.gguf" "$T/direct.gguf"; then
    echo "OK $fx q4_k_m from SafeTensors: identical to llama.cpp's quantize of the F32 GGUF"
  else
    echo "FAIL $fx q4_k_m from SafeTensors differs from llama.cpp's output"
    python3 "$T/oracle.py" compare "$T/llama.gguf" "$T/direct.gguf" "$fx direct" || true
    failures=$((failures + 1))
  fi
done

# 2. synthetic models: 16 layers of width 256 (use_more_bits, n/8 and n/16 rules, n_gqa 4),
#    9 tied layers of width 160 (fallbacks), 2 layers with rows of 200 and 100 (F16 fallback)
python3 "$T/oracle.py" synth "$T/s16.gguf" 16 256 256 4 1 256 untied 1
python3 "$T/oracle.py" synth "$T/s9.gguf" 9 160 416 5 1 320 tied 2
python3 "$T/oracle.py" synth "$T/s2.gguf" 2 200 100 5 1 64 untied 3
for m in s16 s9 s2; do
  for mix in q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k_s q3_k_m q3_k_l q4_k_s q4_k_m q5_k_s q5_k_m q6_k f16 bf16 f32; do
    run "$m $mix" "$T/$m.gguf" "$mix"
  done
done
run "s16 q4_k_m --pure" "$T/s16.gguf" q4_k_m --pure
run "s9 q4_k_m --pure" "$T/s9.gguf" q4_k_m --pure
run "s16 q4_k_m --output-tensor-type q8_0 --token-embedding-type q5_k" "$T/s16.gguf" q4_k_m \
  --output-tensor-type q8_0 --token-embedding-type q5_k
run "s9 q5_k_m --output-tensor-type q6_k (tied)" "$T/s9.gguf" q5_k_m --output-tensor-type q6_k
run "s16 f16 --output-tensor-type q8_0" "$T/s16.gguf" f16 --output-tensor-type q8_0
run "s16 q4_k_m --leave-output-tensor" "$T/s16.gguf" q4_k_m --leave-output-tensor
run "s16 q4_k_m --tensor-type" "$T/s16.gguf" q4_k_m --tensor-type 'blk\.1\.attn_v=q8_0' \
  --tensor-type 'ffn_(gate|up)=Q5_K' --tensor-type 'BLK\.[0-3]\.FFN_DOWN=q4_0'
run "s9 q4_k_s --tensor-type" "$T/s9.gguf" q4_k_s --tensor-type 'attn_output=q6_k'

# requantizing: llama.cpp needs --allow-requantize, Rosetta warns; both dequantize to F32 first
"$harness" "$T/s16.gguf" "$T/s16.q8_0.gguf" q8_0 2>/dev/null
"$harness" "$T/s9.gguf" "$T/s9.q5_k_m.gguf" q5_k_m 2>/dev/null
run "s16 q8_0 -> q4_k_m (requantize)" "$T/s16.q8_0.gguf" q4_k_m --allow-requantize
run "s9 q5_k_m -> q4_0 (requantize)" "$T/s9.q5_k_m.gguf" q4_0 --allow-requantize

# 3. importance matrices (Rosetta weights Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K by them, as
#    llama.cpp does; Q8_0 and the float types ignore them)
python3 "$T/oracle.py" imatrix "$T/s16.gguf" "$T/s16.imatrix.gguf" "$T/s16.imatrix.dat" 4
python3 "$T/oracle.py" imatrix "$T/s9.gguf" "$T/s9.imatrix.gguf" "$T/s9.imatrix.dat" 6
f32="$T/tiny-qwen2.f32.gguf"
python3 "$T/oracle.py" imatrix "$f32" "$T/tiny.imatrix.gguf" "$T/tiny.imatrix.dat" 5
for mix in q4_k_m q5_k_m q6_k q4_k_s q4_0 q5_0 q2_k q3_k_m q8_0; do
  run "s16 $mix --imatrix (GGUF)" "$T/s16.gguf" "$mix" --imatrix "$T/s16.imatrix.gguf"
done
run "s16 q4_k_m --imatrix (legacy .dat)" "$T/s16.gguf" q4_k_m --imatrix "$T/s16.imatrix.dat"
for mix in q4_k_m q5_k_s q4_1; do
  run "s9 $mix --imatrix (GGUF)" "$T/s9.gguf" "$mix" --imatrix "$T/s9.imatrix.gguf"
done
run "tiny-qwen2 q4_k_m --imatrix" "$f32" q4_k_m --imatrix "$T/tiny.imatrix.gguf"

echo "quantize_oracle: $cases cases, $failures failed"
[ "$failures" -eq 0 ]
