#!/usr/bin/env bash
# apr detect: formats are decided by content, never by file name. Files are made here from raw
# bytes (Python), so the expected answer comes from the spec's magic rules, not from Rosetta.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/detect"
rm -rf "$tmp" && mkdir -p "$tmp"
apr="$APR_BIN/apr"
fixture="$ROSETTA_ROOT/fixtures/tiny-qwen2"
checks=0
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 - "$tmp" <<'EOF'
import json, struct, sys, os
d = sys.argv[1]
def w(name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
# GGUF v3 header with no tensors and no KV pairs, named .safetensors to mislead.
w("gguf.safetensors", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
# APR v2 header magic + version 2.0 (the rest zero), named .gguf.
w("apr.gguf", b"APR\x00\x02\x00" + bytes(58))
w("apr2.bin", b"APR2" + bytes(60))
w("aprn.bin", b"APRN" + bytes(60))
w("tsp.apr", b"APR\x00\x01\x00\x00\x00\x00PST" + bytes(52))
# A minimal SafeTensors file with one F32 scalar, named .apr.
header = json.dumps({"x": {"dtype": "F32", "shape": [], "data_offsets": [0, 4]}}).encode()
w("st.apr", struct.pack("<Q", len(header)) + header + bytes(4))
# A SafeTensors shard index.
w("index.json", json.dumps({"metadata": {}, "weight_map": {"x": "a.safetensors"}}).encode())
# Not a model: text, an empty file, a length prefix followed by no JSON.
w("text.gguf", b"hello, world\n")
w("empty.safetensors", b"")
w("nojson.bin", struct.pack("<Q", 4) + b"abcd")
# A '{' at byte 8 with an impossible header length is still SafeTensors for detection: the
# reader then says precisely what is wrong with the length.
w("biglen.safetensors", struct.pack("<Q", 1 << 40) + b"{}")
EOF

expect() { # FILE FORMAT: the line must be "FILE: FORMAT (description)"
  local out
  out=$("$apr" detect "$1") || fail "apr detect $1 exited $?"
  case "$out" in
    "$1: $2 ("*")") ;;
    *) fail "apr detect $1: got '$out', expected format $2" ;;
  esac
  checks=$((checks + 1))
}

expect "$tmp/gguf.safetensors" gguf
expect "$tmp/apr.gguf" apr
expect "$tmp/apr2.bin" apr2-magic
expect "$tmp/aprn.bin" apr-v1
expect "$tmp/tsp.apr" apr-tsp
expect "$tmp/st.apr" safetensors
expect "$tmp/index.json" safetensors-index
expect "$tmp/text.gguf" unknown
expect "$tmp/empty.safetensors" unknown
expect "$tmp/nojson.bin" unknown
expect "$tmp/biglen.safetensors" safetensors
expect "$fixture/model.safetensors" safetensors
expect "$fixture" safetensors-dir
mkdir -p "$tmp/plain-dir" && cp "$tmp/text.gguf" "$tmp/plain-dir/"
expect "$tmp/plain-dir" unknown
expect "$tmp" safetensors-dir

# --json: a valid array, one object per file, in argument order.
"$apr" detect --json "$fixture/model.safetensors" "$tmp/gguf.safetensors" "$tmp/text.gguf" >"$tmp/out.json"
python3 - "$tmp/out.json" "$fixture/model.safetensors" "$tmp/gguf.safetensors" "$tmp/text.gguf" <<'EOF' || fail "detect --json"
import json, sys
data = json.load(open(sys.argv[1]))
assert [d["path"] for d in data] == sys.argv[2:], data
assert [d["format"] for d in data] == ["safetensors", "gguf", "unknown"], data
assert all(isinstance(d["description"], str) and d["description"] for d in data), data
EOF
checks=$((checks + 1))

# An unreadable file among readable ones: the others are still printed, exit 3, the error
# names the missing file on stderr and not on stdout.
set +e
"$apr" detect "$tmp/gguf.safetensors" "$tmp/missing" "$tmp/apr.gguf" >"$tmp/mixed.out" 2>"$tmp/mixed.err"
rc=$?
set -e
[ $rc -eq 3 ] || fail "detect with a missing file exited $rc, expected 3"
[ "$(wc -l <"$tmp/mixed.out")" -eq 2 ] || fail "detect with a missing file printed: $(cat "$tmp/mixed.out")"
grep -q "$tmp/missing" "$tmp/mixed.err" || fail "detect does not name the missing file on stderr"
! grep -q "missing" "$tmp/mixed.out" || fail "detect printed the missing file on stdout"
checks=$((checks + 1))

# Usage: no FILE is a usage error.
set +e
"$apr" detect >/dev/null 2>&1
rc=$?
set -e
[ $rc -eq 2 ] || fail "detect without FILE exited $rc, expected 2"
checks=$((checks + 1))

echo "detect: $checks checks passed"
