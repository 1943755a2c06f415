#!/usr/bin/env bash
# Real weights: apr fingerprint --check of the genuine Qwen2.5-Coder-0.5B Q4_K_M GGUF against the
# committed reference fixtures/real/qwen2.5-coder-0.5b-instruct-q4_k_m.fingerprint.json (every
# tensor's stored bytes, and every statistic, equal), the same output for --threads 1 and 2, and
# its requantizations by apr quantize: Q8_0 (lossy: statistics within tolerance), back to Q4_K_M
# (same dtypes, other bytes: a deviation unless --allow-requantized), F32 (lossless: canonical
# digests equal). --gguf-hash against hashlib and the xxhash package; apr diff-tensors on the
# same pairs.
set -euo pipefail
. "$ROSETTA_ROOT/tests/real/lib.sh"
real_model fingerprint
REF="$ROSETTA_ROOT/fixtures/real/qwen2.5-coder-0.5b-instruct-q4_k_m.fingerprint.json"
FP="$APR_BIN/apr-fingerprint"

"$FP" --check "$REF" "$MODEL" >"$T/check.txt" || fail "--check on the real file: $(tail -n 5 "$T/check.txt")"
"$FP" --check "$REF" --json "$MODEL" >"$T/check.json"
"$FP" --threads 1 "$MODEL" >"$T/fp1.json"
"$FP" --threads 2 "$MODEL" >"$T/fp2.json"
cmp -s "$T/fp1.json" "$T/fp2.json" || fail "fingerprint differs between --threads 1 and 2"

"$APR_BIN/apr-quantize" -q --allow-requantize "$MODEL" "$T/q8.gguf" q8_0 >/dev/null
"$APR_BIN/apr-quantize" -q --allow-requantize "$T/q8.gguf" "$T/q4.gguf" q4_k_m >/dev/null
"$APR_BIN/apr-quantize" -q "$MODEL" "$T/f32.gguf" f32 >/dev/null
"$FP" --check "$REF" --json "$T/q8.gguf" >"$T/q8.json" || fail "--check Q8_0: $(head -c 2000 "$T/q8.json")"
rc=0
"$FP" --check "$REF" --json "$T/q4.gguf" >"$T/q4.json" || rc=$?
[ $rc -eq 1 ] || fail "--check of the requantized Q4_K_M without --allow-requantized: exit $rc, expected 1"
"$FP" --check "$REF" --allow-requantized --json "$T/q4.gguf" >"$T/q4r.json" ||
  fail "--check --allow-requantized Q4_K_M: $(head -c 2000 "$T/q4r.json")"
"$FP" --check "$REF" --json "$T/f32.gguf" >"$T/f32.json" || fail "--check F32: $(head -c 2000 "$T/f32.json")"
"$FP" --gguf-hash "$MODEL" >"$T/gguf-hash.txt"
"$APR_BIN/apr-diff-tensors" --json "$MODEL" "$T/q8.gguf" >"$T/diff-q8.json" || fail "diff-tensors Q8_0 not within tolerance"
"$APR_BIN/apr-diff-tensors" --json "$MODEL" "$T/f32.gguf" >"$T/diff-f32.json" || fail "diff-tensors F32"

python3 - "$T" "$MODEL" "$REF" <<'PY'
import hashlib, json, sys
import xxhash, gguf

tmp, model, ref_path = sys.argv[1:4]
def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)

ref = json.load(open(ref_path))
got = json.load(open(f"{tmp}/fp1.json"))
if [t for t in got["tensors"]] != [t for t in ref["tensors"]]:
    bad = [a["name"] for a, b in zip(got["tensors"], ref["tensors"]) if a != b]
    fail(f"fingerprint differs from the committed reference for {bad[:5]}")
if (got["model_raw_xxh3"], got["model_canonical_xxh3"]) != (ref["model_raw_xxh3"], ref["model_canonical_xxh3"]):
    fail("model digests differ from the committed reference")

def verdicts(name):
    r = json.load(open(f"{tmp}/{name}.json"))
    out = {}
    for t in r["tensors"]:
        out[t["verdict"]] = out.get(t["verdict"], 0) + 1
    return r, out

r, v = verdicts("check")
if v != {"raw": 291}:
    fail(f"real file: verdicts {v}")
r, v = verdicts("q8")
if not r["passed"] or v.get("raw", 0) < 121 or v.get("statistics", 0) == 0:
    fail(f"Q8_0: verdicts {v}")
r, v = verdicts("q4")
devs = r["deviations"]
if r["passed"] or not devs or {d["field"] for d in devs} - {"raw_xxh3", "canonical_xxh3"}:
    fail(f"Q4_K_M without --allow-requantized: fields {sorted({d['field'] for d in devs})}")
r, v = verdicts("q4r")
if not r["passed"]:
    fail(f"Q4_K_M with --allow-requantized: {r['deviations'][:3]}")
r, v = verdicts("f32")
if not r["passed"] or set(v) - {"raw", "canonical"}:
    fail(f"F32: verdicts {v}")
f32_canonical = v.get("canonical", 0)

# --gguf-hash: hashlib / xxhash over the tensor bytes as gguf-py reads them.
lines = open(f"{tmp}/gguf-hash.txt").read().splitlines()
reader = gguf.GGUFReader(model)
want, wx, ws = [], xxhash.xxh64(seed=0), hashlib.sha256()
for rt in reader.tensors:
    data = rt.data.tobytes()
    want.append(f"xxh64     {xxhash.xxh64_hexdigest(data)}  {model}:{rt.name}")
    want.append(f"sha256    {hashlib.sha256(data).hexdigest()}  {model}:{rt.name}")
    wx.update(data)
    ws.update(data)
want += [f"xxh64     {wx.hexdigest()}  {model}", f"sha256    {ws.hexdigest()}  {model}"]
if lines != want:
    bad = [(a, b) for a, b in zip(lines, want) if a != b]
    fail(f"--gguf-hash differs from hashlib/xxhash: {bad[:2]} ({len(lines)} vs {len(want)} lines)")

d8 = json.load(open(f"{tmp}/diff-q8.json"))
d32 = json.load(open(f"{tmp}/diff-f32.json"))
if not d8["passed"] or not d32["passed"] or {t["status"] for t in d32["tensors"]} - {"identical", "same-values"}:
    fail("diff-tensors on the real requantizations")
print(f"real/fingerprint: reference matched (291 raw); Q8_0 {verdicts('q8')[1]}; requantized Q4_K_M "
      f"{len(devs)} digest deviations without --allow-requantized, passes with it; F32 "
      f"{f32_canonical} same values; --gguf-hash = hashlib/xxhash on 291 tensors")
PY
