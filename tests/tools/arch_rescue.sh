#!/usr/bin/env bash
# --arch NAME rescues a GGUF without general.architecture (docs/reliability.md, "A GGUF without
# an architecture"): without it the tools refuse such a file as before (exit 5 naming the
# missing key); with it the model is read from the NAME.* keys, and inspect, validate, convert
# (also rosetta-convert), import and run work on it, the outputs equal those of the original.
# A file that names another architecture is read as NAME with one warning naming both.
# The stripped files are byte edits of a Q8_0 GGUF of the fixture; tensors are compared with
# the Python safetensors and gguf packages (independent readers). Under Valgrind
# (ROSETTA_VALGRIND=1) each code path runs once.
set -uo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"

T="$TEST_TMP/arch_rescue"
rm -rf "$T" && mkdir -p "$T"
FX="$ROSETTA_ROOT/fixtures/tiny-qwen2"
VALGRIND=${ROSETTA_VALGRIND:-0}
TEST_NAME=arch_rescue
. "$ROSETTA_ROOT/tests/tools/lib/checks.sh"
require_python gguf numpy safetensors

"$APR_BIN/apr-quantize" -q "$FX" "$T/q8.gguf" q8_0 >/dev/null 2>"$T/err" || {
  cat "$T/err"
  exit 1
}
# noarch.gguf: general.architecture renamed away (the qwen2.* keys stay);
# llama.gguf: every qwen2 name made llama (a model labelled with the wrong architecture)
python3 - "$T/q8.gguf" "$T/noarch.gguf" "$T/llama.gguf" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
key = b"general.architecture"
assert data.count(key) == 1
open(sys.argv[2], "wb").write(data.replace(key, b"general.architecturX"))
value = b"\x05" + b"\x00" * 7 + b"qwen2"  # GGUF string: u64 length, bytes
assert value in data and b"qwen2." in data
open(sys.argv[3], "wb").write(data.replace(b"qwen2.", b"llama.").replace(value, value[:8] + b"llama"))
EOF
python3 - "$T/noarch.gguf" "$T/llama.gguf" <<'EOF' || fail "the edited files are not what the test needs"
import sys, gguf
r = gguf.GGUFReader(sys.argv[1])
assert "general.architecture" not in r.fields and "qwen2.block_count" in r.fields
r = gguf.GGUFReader(sys.argv[2])
f = r.fields["general.architecture"]
assert bytes(f.parts[f.data[0]]) == b"llama" and "llama.block_count" in r.fields
EOF

# ---- without --arch: refused as before ------------------------------------------------------
run "$T/out" "$T/err" "$APR_BIN/apr-convert" "$T/noarch.gguf" -o "$T/refused.safetensors"
expect "apr convert noarch.gguf (no --arch)" 5 $?
has "apr convert (no --arch)" "$T/err" "general.architecture is missing"
has "apr convert (no --arch)" "$T/err" "contract violated: family.unknown_architecture"
[ -e "$T/refused.safetensors" ] && fail "apr convert (no --arch) wrote an output"
if [ "$VALGRIND" != 1 ]; then
  run "$T/out" "$T/err" "$APR_BIN/apr-validate" "$T/noarch.gguf"
  expect "apr validate noarch.gguf (no --arch)" 5 $?
  has "apr validate (no --arch)" "$T/out" "family.unknown_architecture"
  run "$T/out" "$T/err" "$APR_BIN/apr-run" "$T/noarch.gguf" -p hi -n 2
  expect "apr run noarch.gguf (no --arch)" 5 $?
  has "apr run (no --arch)" "$T/err" "family.unknown_architecture"
  run "$T/out" "$T/err" "$APR_BIN/apr-convert" "$T/noarch.gguf" -o "$T/refused.gguf"
  expect "apr convert noarch.gguf -o .gguf (no --arch)" 5 $?
  has "apr convert -o .gguf (no --arch)" "$T/err" "rule gguf.architecture"
fi

# ---- with --arch qwen2: read from the qwen2.* keys ------------------------------------------
run "$T/out" "$T/err" "$APR_BIN/apr-inspect" --arch qwen2 "$T/noarch.gguf"
expect "apr inspect --arch qwen2" 0 $?
grep -Eq '^ +architecture +qwen2$' "$T/out" || fail "apr inspect --arch: architecture not qwen2"
grep -Eq '^ +hidden_size +256$' "$T/out" || fail "apr inspect --arch: hidden_size not read"
has "apr inspect --arch" "$T/err" "general.architecture is missing: read as 'qwen2'"

run "$T/out" "$T/err" "$APR_BIN/apr-convert" --arch qwen2 "$T/noarch.gguf" -o "$T/noarch.safetensors"
expect "apr convert --arch qwen2 noarch.gguf -o .safetensors" 0 $?
[ "$(grep -c "read as 'qwen2'" "$T/err")" -eq 1 ] || fail "apr convert --arch: not one warning: $(cat "$T/err")"
"$APR_BIN/apr-convert" -q "$T/q8.gguf" -o "$T/orig.safetensors" >/dev/null 2>"$T/err" ||
  fail "apr convert q8.gguf: $(cat "$T/err")"
python3 - "$T/noarch.safetensors" "$T/orig.safetensors" <<'EOF' || fail "apr convert --arch: tensors differ from the original's conversion"
import sys, numpy as np
from safetensors.numpy import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
assert sorted(a) == sorted(b) and len(a) > 20, (sorted(a), sorted(b))
for k in a:
    assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
    assert np.array_equal(a[k].view(np.uint8), b[k].view(np.uint8)), k
EOF

if [ "$VALGRIND" != 1 ]; then
  run "$T/out" "$T/err" "$APR_BIN/apr-validate" --arch qwen2 "$T/noarch.gguf"
  expect "apr validate --arch qwen2" 0 $?
  has "apr validate --arch" "$T/out" "0 violations"

  # GGUF output: general.architecture qwen2 written, tensors identical to the original's
  run "$T/out" "$T/err" "$APR_BIN/rosetta-convert" --arch qwen2 "$T/noarch.gguf" -o "$T/rescued.gguf"
  expect "rosetta-convert --arch qwen2 noarch.gguf -o .gguf" 0 $?
  python3 - "$T/rescued.gguf" "$T/q8.gguf" <<'EOF' || fail "rosetta-convert --arch: the GGUF output is not the original's"
import sys, numpy as np, gguf
a, b = gguf.GGUFReader(sys.argv[1]), gguf.GGUFReader(sys.argv[2])
f = a.fields["general.architecture"]
assert bytes(f.parts[f.data[0]]) == b"qwen2"
assert "qwen2.block_count" in a.fields
ta = {t.name: t for t in a.tensors}
tb = {t.name: t for t in b.tensors}
assert sorted(ta) == sorted(tb)
for n, t in ta.items():
    assert t.tensor_type == tb[n].tensor_type and list(t.shape) == list(tb[n].shape), n
    assert np.array_equal(np.asarray(t.data).view(np.uint8), np.asarray(tb[n].data).view(np.uint8)), n
EOF

  run "$T/out" "$T/err" "$APR_BIN/apr-import" --arch qwen2 "$T/noarch.gguf" -o "$T/noarch.apr"
  expect "apr import --arch qwen2" 0 $?
  "$APR_BIN/apr-diff-tensors" "$T/noarch.apr" "$T/orig.safetensors" >"$T/out" 2>"$T/err" ||
    fail "apr import --arch: tensors differ from the original's: $(tail -3 "$T/out")"

  "$APR_BIN/apr-run" "$T/q8.gguf" -p "The capital" -n 6 >"$T/run-orig" 2>"$T/err" ||
    fail "apr run q8.gguf: $(cat "$T/err")"
  run "$T/out" "$T/err" "$APR_BIN/apr-run" --arch qwen2 "$T/noarch.gguf" -p "The capital" -n 6
  expect "apr run --arch qwen2" 0 $?
  cmp -s "$T/out" "$T/run-orig" || fail "apr run --arch: text differs from the original's"
  has "apr run --arch" "$T/err" "read as 'qwen2'"

  # ---- a file that names another architecture: --arch wins, one warning naming both -------
  run "$T/out" "$T/err" "$APR_BIN/apr-inspect" --arch qwen2 "$T/llama.gguf"
  expect "apr inspect --arch qwen2 llama.gguf" 0 $?
  grep -Eq '^ +rope_type +neox$' "$T/out" || fail "apr inspect --arch over llama: rope type not qwen2's"
  grep -Eq '^ +hidden_size +256$' "$T/out" || fail "apr inspect --arch over llama: llama.* keys not read"
  run "$T/out" "$T/err" "$APR_BIN/apr-convert" --arch qwen2 "$T/llama.gguf" -o "$T/relabelled.gguf"
  expect "apr convert --arch qwen2 llama.gguf" 0 $?
  [ "$(grep -c "general.architecture is 'llama' but 'qwen2' was asked for" "$T/err")" -eq 1 ] ||
    fail "apr convert --arch over llama: not one warning naming both: $(cat "$T/err")"
  python3 - "$T/relabelled.gguf" <<'EOF' || fail "apr convert --arch over llama: output not relabelled"
import sys, gguf
r = gguf.GGUFReader(sys.argv[1])
f = r.fields["general.architecture"]
assert bytes(f.parts[f.data[0]]) == b"qwen2"
assert "qwen2.block_count" in r.fields and not any(k.startswith("llama.") for k in r.fields)
EOF

  # both prefixes present (general.architecture llama, the qwen2.* keys, and a stray
  # llama.block_count 99): qwen2's own keys are read and written once; two pairs of 64 bytes in
  # all are inserted after the header, so the data stays aligned
  python3 - "$T/q8.gguf" "$T/both.gguf" <<'EOF'
import struct, sys
d = bytearray(open(sys.argv[1], "rb").read())
value = b"\x05" + b"\x00" * 7 + b"qwen2"
at = d.index(b"general.architecture") + len(b"general.architecture") + 4
assert d[at:at + 13] == value
d[at + 8:at + 13] = b"llama"
def pair(key, vtype, payload):
    return struct.pack("<Q", len(key)) + key + struct.pack("<I", vtype) + payload
extra = pair(b"llama.block_count", 4, struct.pack("<I", 99)) + \
    pair(b"llama.xpad", 8, struct.pack("<Q", 1) + b"x")
assert len(extra) == 64
n_kv = struct.unpack_from("<Q", d, 16)[0]
struct.pack_into("<Q", d, 16, n_kv + 2)
open(sys.argv[2], "wb").write(bytes(d[:24]) + extra + bytes(d[24:]))
EOF
  run "$T/out" "$T/err" "$APR_BIN/apr-convert" --arch qwen2 "$T/both.gguf" -o "$T/both-out.gguf"
  expect "apr convert --arch qwen2 both.gguf" 0 $?
  python3 - "$T/both-out.gguf" <<'EOF' || fail "apr convert --arch over both prefixes: qwen2.block_count not kept once"
import sys, gguf
r = gguf.GGUFReader(sys.argv[1])
f = r.fields["qwen2.block_count"]
assert int(f.parts[f.data[0]][0]) == 2, f.parts[f.data[0]]
assert not any(k.startswith("llama.") for k in r.fields)
EOF

  # SafeTensors and APR: the architecture becomes NAME, one warning naming both
  "$APR_BIN/apr-import" -q "$FX" -o "$T/fx.apr" >/dev/null 2>"$T/err" || fail "apr import: $(cat "$T/err")"
  for src in "$FX" "$T/fx.apr"; do
    run "$T/out" "$T/err" "$APR_BIN/apr-inspect" --arch llama "$src"
    expect "apr inspect --arch llama $(basename "$src")" 0 $?
    grep -Eq '^ +architecture +llama$' "$T/out" || fail "apr inspect --arch llama $(basename "$src"): not llama"
    [ "$(grep -c "the architecture is 'qwen2' but 'llama' was asked for" "$T/err")" -eq 1 ] ||
      fail "apr inspect --arch llama $(basename "$src"): not one warning naming both: $(cat "$T/err")"
  done
fi

if [ $fails -gt 0 ]; then
  echo "arch_rescue: $fails failure(s)" >&2
  exit 1
fi
echo "arch_rescue: ok"
