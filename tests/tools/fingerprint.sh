#!/usr/bin/env bash
# apr fingerprint on the fixture in three formats (SafeTensors BF16, and GGUF / APR written by
# apr quantize here): canonical digests equal across lossless conversions; --check passes on the
# same model in another format and on lossy quantizations, fails (exit 1, naming the tensor and
# field) on a modified tensor; single bit flips at random positions change the tensor's raw
# digest and the model digest; identical output across runs and --threads 1/2/3; every statistic
# against numpy on the same values (percentiles: numpy.percentile method "lower"); the output
# validated against docs/fingerprint-schema.json (jsonschema); --gguf-hash against hashlib
# sha256 and the xxhash package on the same tensor bytes; damaged inputs exit 3.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/fingerprint"
rm -rf "$tmp" && mkdir -p "$tmp"
for mod in numpy jsonschema xxhash gguf; do
  python3 -c "import $mod" 2>/dev/null || { echo "SKIP: python module $mod is missing (make test installs it)" >&2; exit 77; }
done
exec python3 - "$APR_BIN" "$ROSETTA_ROOT" "$tmp" <<'PY'
import hashlib, json, os, random, shutil, struct, subprocess, sys
import numpy as np
import jsonschema, xxhash, gguf

apr, root, tmp = sys.argv[1:4]
# Inputs are made by the build's own apr quantize (not the program under test: under
# `make test-valgrind` APR_BIN holds memcheck wrappers, and quantizing there only costs time).
QUANTIZE = os.path.join(os.environ.get("ROSETTA_BUILD") or os.path.join(apr, ".."), "bin", "apr-quantize")
QUICK = os.environ.get("ROSETTA_VALGRIND") == "1"  # fewer repetitions under memcheck
FP = os.path.join(apr, "apr-fingerprint")
checks = 0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    global checks
    if not cond:
        fail(msg)
    checks += 1


def run(args, rc=0, exe=FP):
    p = subprocess.run([exe, *args], capture_output=True, timeout=300)
    if p.returncode != rc:
        fail(f"{os.path.basename(exe)} {' '.join(args)}: exit {p.returncode}, expected {rc}\n"
             f"stdout: {p.stdout.decode(errors='replace')[-1500:]}\n"
             f"stderr: {p.stderr.decode(errors='replace')[-1500:]}")
    return p.stdout.decode(), p.stderr.decode()


def fingerprint(path, *extra):
    out, _ = run([*extra, path])
    return json.loads(out)


src = os.path.join(root, "fixtures/tiny-qwen2/model.safetensors")
files = {"st": src}
for name, fmt, typ in (("bf16.gguf", "gguf", "bf16"), ("bf16.apr", "apr", "bf16"),
                       ("f32.gguf", "gguf", "f32"), ("q8.gguf", "gguf", "q8_0"),
                       ("q4.gguf", "gguf", "q4_k_m"), ("q4.apr", "apr", "q4_k_m")):
    out = os.path.join(tmp, name)
    run(["-q", "--format", fmt, src, out, typ], exe=QUANTIZE)
    files[name] = out
fps = {k: fingerprint(v) for k, v in files.items()}

# Schema: every output validates.
schema = json.load(open(os.path.join(root, "docs/fingerprint-schema.json")))
for k, fp in fps.items():
    try:
        jsonschema.validate(fp, schema)
    except jsonschema.ValidationError as e:
        fail(f"{k}: fingerprint does not validate against docs/fingerprint-schema.json: {e.message}")
    check(fp["tensor_count"] == len(fp["tensors"]) == 27, f"{k}: tensor count")

# Lossless conversions: same canonical digests per tensor and for the model.
ref = {t["canonical"]: t for t in fps["st"]["tensors"]}
for k in ("bf16.gguf", "bf16.apr", "f32.gguf"):
    for t in fps[k]["tensors"]:
        check(t["canonical_xxh3"] == ref[t["canonical"]]["canonical_xxh3"],
              f"{k}: {t['name']} canonical digest differs from the SafeTensors source")
    check(fps[k]["model_canonical_xxh3"] == fps["st"]["model_canonical_xxh3"],
          f"{k}: model canonical digest differs")
check(fps["bf16.apr"]["model_raw_xxh3"] == fps["st"]["model_raw_xxh3"], "APR BF16 keeps the bytes")
check(fps["f32.gguf"]["model_raw_xxh3"] != fps["st"]["model_raw_xxh3"], "F32 raw digest differs")

# --check: same model in other formats and lossy quantizations pass.
ref_path = os.path.join(tmp, "ref.json")
run(["-o", ref_path, src])
check(json.load(open(ref_path)) == fps["st"], "-o writes what stdout shows")
for k, path in files.items():
    if QUICK and k not in ("bf16.gguf", "q4.apr"):
        continue
    out, _ = run(["--check", ref_path, path])
    check(out.startswith("MATCH"), f"--check {k}: {out}")
rep = json.loads(run(["--check", ref_path, "--json", files["q4.gguf"]])[0])
verdicts = {t["verdict"] for t in rep["tensors"]}
check(rep["passed"] and verdicts <= {"raw", "canonical", "statistics"} and "statistics" in verdicts,
      f"q4 verdicts {verdicts}")
# The same quantization checked as a reference of itself must match its bytes exactly.
q4_ref = os.path.join(tmp, "q4.json")
run(["-o", q4_ref, files["q4.gguf"]])
rep = json.loads(run(["--check", q4_ref, "--json", files["q4.gguf"]])[0])
check({t["verdict"] for t in rep["tensors"]} == {"raw"}, "self-check is raw everywhere")

# A modified tensor (one tensor scaled by 1.5 in a copy of the SafeTensors file) fails, naming it.
raw = bytearray(open(src, "rb").read())
hlen = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + hlen])
victim = "model.layers.1.mlp.down_proj.weight"
a, b = header[victim]["data_offsets"]
assert header[victim]["dtype"] == "BF16"
base = 8 + hlen
vals = np.frombuffer(bytes(raw[base + a:base + b]), dtype="<u2").astype(np.uint32) << 16
scaled = (vals.view(np.float32) * np.float32(1.5)).view(np.uint32) >> 16
raw[base + a:base + b] = scaled.astype("<u2").tobytes()
moddir = os.path.join(tmp, "modified")
shutil.copytree(os.path.dirname(src), moddir)
mod = os.path.join(moddir, "model.safetensors")
open(mod, "wb").write(raw)
out, _ = run(["--check", ref_path, mod], rc=1)
check(f"DEVIATION  {victim}  raw_xxh3" in out and f"{victim}  canonical_xxh3" in out,
      f"--check names the modified tensor and its digests:\n{out}")
rep = json.loads(run(["--check", ref_path, "--json", mod], rc=1)[0])
devs = [d for d in rep["deviations"]]
check(devs and all(d["tensor"] == victim for d in devs), f"only {victim} deviates: {devs}")
# A lossy copy of the modified tensor: statistics out of tolerance are named field by field.
q4mod = os.path.join(tmp, "q4mod.gguf")
run(["-q", "--format", "gguf", mod, q4mod, "q4_k_m"], exe=QUANTIZE)
rep = json.loads(run(["--check", ref_path, "--json", q4mod], rc=1)[0])
fields = {d["field"] for d in rep["deviations"] if d["tensor"] == "blk.1.ffn_down.weight"}
check("stats.std" in fields and "stats.p99" in fields, f"lossy modified tensor fields {fields}")
check(all(d["tensor"] == "blk.1.ffn_down.weight" for d in rep["deviations"]),
      "only the modified tensor deviates after quantization")

# Determinism: runs and thread counts give the same bytes.
outs = {run(["--threads", str(t), files["q4.apr"]])[0] for t in ((1, 2) if QUICK else (1, 2, 3))}
outs.add(run([files["q4.apr"]])[0])
check(len(outs) == 1, "output differs across runs / thread counts")

# Statistics against numpy on the same values (gguf-py dequantizes the GGUF blocks).
def ref_stats(vals):
    v = vals.astype(np.float64)
    fin = v[np.isfinite(v)]
    s = {"count": v.size, "finite": fin.size, "nan": int(np.isnan(v).sum()),
         "inf": int(np.isinf(v).sum()), "zeros": int((fin == 0).sum()),
         "min": fin.min(), "max": fin.max(), "mean": fin.mean(), "std": fin.std(),
         "l2": float(np.sqrt(np.sum(fin * fin)))}
    f32 = vals[np.isfinite(vals)]
    for p in (1, 5, 25, 50, 75, 95, 99):
        s[f"p{p}"] = float(np.percentile(f32, p, method="lower"))
    return s

for key in ("q4.gguf", "q8.gguf", "f32.gguf"):
    reader = gguf.GGUFReader(files[key])
    got = {t["name"]: t for t in fps[key]["tensors"]}
    for rt in reader.tensors:
        vals = gguf.quants.dequantize(rt.data, rt.tensor_type).astype(np.float32).ravel()
        want = ref_stats(vals)
        s = got[rt.name]["stats"]
        for f in ("count", "finite", "nan", "inf", "zeros"):
            check(s[f] == want[f], f"{key} {rt.name} {f}: apr {s[f]!r}, numpy {want[f]!r}")
        # float32 values are written as the shortest text that reads back as the same float32
        for f in ("min", "max", "p1", "p5", "p25", "p50", "p75", "p95", "p99"):
            check(np.float32(s[f]) == np.float32(want[f]),
                  f"{key} {rt.name} {f}: apr {s[f]!r}, numpy {want[f]!r}")
        for f in ("mean", "std", "l2"):
            check(abs(s[f] - want[f]) <= 1e-9 * max(abs(want[f]), 1e-6),
                  f"{key} {rt.name} {f}: apr {s[f]!r}, numpy {want[f]!r}")
        # canonical digest = XXH3-64 of the dequantized values as little-endian F32
        check(got[rt.name]["canonical_xxh3"] == xxhash.xxh3_64_hexdigest(vals.astype("<f4").tobytes()),
              f"{key} {rt.name}: canonical digest is not XXH3 of the dequantized values")
        check(got[rt.name]["raw_xxh3"] == xxhash.xxh3_64_hexdigest(bytes(rt.data.tobytes())),
              f"{key} {rt.name}: raw digest is not XXH3 of the stored bytes")

# --gguf-hash: the llama-gguf-hash line format, hashes recomputed with hashlib and xxhash.
path = files["q4.gguf"]
out, _ = run(["--gguf-hash", path])
lines = out.splitlines()
reader = gguf.GGUFReader(path)
want = []
whole_x, whole_s = xxhash.xxh64(seed=0), hashlib.sha256()
for rt in reader.tensors:
    data = bytes(rt.data.tobytes())
    want.append(f"xxh64     {xxhash.xxh64_hexdigest(data)}  {path}:{rt.name}")
    want.append(f"sha256    {hashlib.sha256(data).hexdigest()}  {path}:{rt.name}")
    whole_x.update(data)
    whole_s.update(data)
want.append(f"xxh64     {whole_x.hexdigest()}  {path}")
want.append(f"sha256    {whole_s.hexdigest()}  {path}")
check(lines == want, "--gguf-hash lines differ from hashlib/xxhash:\n" +
      "\n".join(f"{a}\n{b}" for a, b in zip(lines, want) if a != b)[:2000])

# Bit flips: any single bit of any tensor's data changes that tensor's raw digest and the model's.
path = files["bf16.gguf"]
reader = gguf.GGUFReader(path)
spans = [(rt.name, int(rt.data_offset), int(rt.n_bytes)) for rt in reader.tensors]
base_fp = fingerprint(path)
base_raw = {t["name"]: t["raw_xxh3"] for t in base_fp["tensors"]}
flipped = os.path.join(tmp, "flipped.gguf")
shutil.copy(path, flipped)
rng = random.Random(12)
blob = bytearray(open(path, "rb").read())
for trial in range(2 if QUICK else 8):  # 2000 more in tests/unit/test_fingerprint.c
    name, off, n = rng.choice(spans)
    pos, bit = off + rng.randrange(n), rng.randrange(8)
    blob[pos] ^= 1 << bit
    open(flipped, "wb").write(blob)
    fp = fingerprint(flipped)
    blob[pos] ^= 1 << bit
    changed = [t["name"] for t in fp["tensors"] if t["raw_xxh3"] != base_raw[t["name"]]]
    check(changed == [name], f"flip of bit {bit} at {pos} ({name}): raw digests changed for {changed}")
    check(fp["model_raw_xxh3"] != base_fp["model_raw_xxh3"], f"flip at {pos}: model digest unchanged")

# Layouts and special values laid out by hand: APR's own encodings (APR_Q8: one f32 scale and
# int8 values; APR_Q4: f16 scale + 16 nibble bytes per 32 values, partial last block; K-quants
# padded to whole super-blocks per row, and a 1-D one whose last block is padded) and a
# SafeTensors file with NaN, +-Inf, -0, an all-NaN, an empty and a scalar tensor, F16 subnormals
# and a BF16 tensor longer than one chunk. Statistics and canonical digests against numpy/xxhash.
def a64(n):
    return (n + 63) // 64 * 64

def apr_file(path, tensors):
    import zlib
    meta = b'{"model_type":"test"}'
    index, data = b"", b""
    for tname, code, shape, blob in sorted(tensors, key=lambda t: t[0].encode()):
        index += struct.pack("<H", len(tname)) + tname.encode() + struct.pack("<BB", code, len(shape))
        index += b"".join(struct.pack("<Q", d) for d in shape) + struct.pack("<QQ", len(data), len(blob))
        data += blob + bytes(a64(len(blob)) - len(blob))
    index_at = 64 + a64(len(meta))
    data_at = index_at + a64(len(index))
    hdr = bytearray(b"APR\0\x02\x00" + struct.pack("<HIQIQQ", 0x0400, len(tensors), 64, len(meta), index_at, data_at) + bytes(24))
    hdr[40:44] = struct.pack("<I", zlib.crc32(bytes(hdr[:40]) + bytes(hdr[44:])))
    body = bytes(hdr) + meta + bytes(a64(len(meta)) - len(meta)) + index + bytes(a64(len(index)) - len(index)) + data
    with open(path, "wb") as f:
        f.write(body + struct.pack("<I", zlib.crc32(body)))

rng = np.random.default_rng(11)
q8_vals = rng.integers(-127, 128, size=3 * 70000).astype(np.int8)
q8_scale = np.float32(0.0123)
q4_n = 70001
q4_blocks = (q4_n + 31) // 32
q4_nib = rng.integers(0, 16, size=q4_blocks * 32).astype(np.uint8)
q4_nib[q4_n:] = 0
q4_scales = rng.uniform(0.01, 0.1, size=q4_blocks).astype("<f2")
q4_bytes = b"".join(q4_scales[b].tobytes() + bytes((q4_nib[b * 32 + 2 * k] | (q4_nib[b * 32 + 2 * k + 1] << 4)) for k in range(16))
                    for b in range(q4_blocks))
q4_expect = ((q4_nib.astype(np.float32) - 8) * np.repeat(q4_scales.astype(np.float32), 32))[:q4_n]

def kblocks(qt, n_blocks, f16_fields):
    size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[qt]][1]
    b = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in f16_fields:
        b[:, off:off + 2] = np.array(rng.uniform(0.001, 0.05, size=n_blocks), dtype="<f2").view(np.uint8).reshape(-1, 2)
    return b, gguf.quants.dequantize(b, gguf.GGMLQuantizationType[qt]).reshape(n_blocks, 256)

k4, k4_vals = kblocks("Q4_K", 3, (0, 2))  # 3 rows of 160 values, one padded block each
k6, k6_vals = kblocks("Q6_K", 2, (208,))  # 300 values in two blocks
hand = os.path.join(tmp, "hand.apr")
apr_file(hand, [("q8", 129, [3, 70000], q8_scale.tobytes() + q8_vals.tobytes()),
                ("q4", 128, [q4_n], q4_bytes), ("k4", 12, [3, 160], k4.tobytes()),
                ("k6", 14, [300], k6.tobytes())])
expect = {"q8": q8_vals.astype(np.float32) * q8_scale, "q4": q4_expect,
          "k4": k4_vals[:, :160].ravel().astype(np.float32), "k6": k6_vals.ravel()[:300].astype(np.float32)}

special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.5, 3e38] + list(rng.standard_normal(24)), dtype="<f4")
f16 = rng.standard_normal(15).astype("<f2")
f16[3] = np.float16(6e-8)  # subnormal
f16[7] = np.float16(np.inf)
bf16_bits = ((rng.standard_normal(70000) * 3 + 1).astype(np.float32).view(np.uint32) >> 16).astype("<u2")
bf16_bits[12345] = 0x7FC0  # NaN
bf16_bits[:100] = 0
st_tensors = [("f32.special", "F32", [4, 8], special.tobytes(), special),
              ("f16.values", "F16", [3, 5], f16.tobytes(), f16.astype(np.float32)),
              ("bf16.long", "BF16", [70000], bf16_bits.tobytes(),
               (bf16_bits.astype(np.uint32) << 16).view(np.float32)),
              ("f32.all_nan", "F32", [3], np.full(3, np.nan, dtype="<f4").tobytes(), np.full(3, np.nan, dtype=np.float32)),
              ("f32.empty", "F32", [0, 4], b"", np.zeros(0, dtype=np.float32)),
              ("f32.scalar", "F32", [], np.array([42.0], dtype="<f4").tobytes(), np.array([42.0], dtype=np.float32))]
# Above 2^14 values the percentiles come from the two-pass histogram instead of quickselect:
# F32 with ties, -0, NaN and Inf; BF16 (one pass: no low bits); F16.
big = (rng.standard_normal(1_200_000) * 0.05).astype(np.float32)
big[::7] = np.float32(0.0123)
big[5::11] = -0.0
big[3] = np.nan
big[4] = -np.inf
big_bf16 = ((rng.standard_normal(1_100_000) * 2).astype(np.float32).view(np.uint32) >> 16).astype("<u2")
big_f16 = (rng.standard_normal(1_050_000) * 3).astype("<f2")
st_tensors += [] if QUICK else [("f32.big", "F32", [1200, 1000], big.tobytes(), big),
               ("bf16.big", "BF16", [1_100_000], big_bf16.tobytes(), (big_bf16.astype(np.uint32) << 16).view(np.float32)),
               ("f16.big", "F16", [1050, 1000], big_f16.tobytes(), big_f16.astype(np.float32))]
hdr, data = {}, b""
for tname, dt, shape, blob, _ in st_tensors:
    hdr[tname] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
    data += blob
hj = json.dumps(hdr).encode()
hj += b" " * (-len(hj) % 8)
special_path = os.path.join(tmp, "special.safetensors")
open(special_path, "wb").write(struct.pack("<Q", len(hj)) + hj + data)
expect.update({t[0]: t[4] for t in st_tensors})

for path in (hand, special_path):
    fp = fingerprint(path)
    jsonschema.validate(fp, schema)
    for t in fp["tensors"]:
        vals, s = expect[t["name"]], t["stats"]
        label = f"{os.path.basename(path)}/{t['name']}"
        check(s is not None, f"{label}: no statistics: {t['values_error']}")
        check(t["canonical_xxh3"] == xxhash.xxh3_64_hexdigest(vals.astype("<f4").tobytes()),
              f"{label}: canonical digest")
        fin = vals[np.isfinite(vals)]
        check((s["count"], s["finite"], s["nan"], s["inf"], s["zeros"]) ==
              (vals.size, fin.size, int(np.isnan(vals).sum()), int(np.isinf(vals).sum()), int((fin == 0).sum())),
              f"{label}: counts {s}")
        if fin.size == 0:
            check(all(s[f] is None for f in ("min", "max", "mean", "std", "l2", "p1", "p50", "p99")),
                  f"{label}: no finite value gives nulls: {s}")
            continue
        want = ref_stats(vals)
        for f in ("min", "max", "p1", "p5", "p25", "p50", "p75", "p95", "p99"):
            check(np.float32(s[f]) == np.float32(want[f]), f"{label} {f}: apr {s[f]!r}, numpy {want[f]!r}")
        for f in ("mean", "std", "l2"):
            check(abs(s[f] - want[f]) <= 1e-9 * max(abs(want[f]), 1e-6), f"{label} {f}: apr {s[f]!r}, numpy {want[f]!r}")

# A file truncated by another process while mapped: every call reports it (RF_ERR_IO, "file
# changed while in use") instead of dying of SIGBUS, also from worker threads.
helper = os.path.join(os.environ.get("ROSETTA_BUILD") or os.path.join(apr, ".."), "tests", "mapped_fingerprint")
for call in ("fingerprint", "stats", "hashes", "diff"):
    victim_file = os.path.join(tmp, f"truncate-{call}.gguf")
    shutil.copy(files["bf16.gguf"], victim_file)
    p = subprocess.Popen([helper, call, victim_file], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    check(p.stdout.readline().strip() == b"mapped", f"{call}: helper did not map the file")
    os.truncate(victim_file, 200000)
    out, err = p.communicate(b"go\n", timeout=120)
    check(p.returncode == 3 and b"file changed while in use" in err,
          f"truncated while mapped ({call}): exit {p.returncode}, {err.decode(errors='replace')}")

# Damaged inputs: exit 3 with a message naming the file.
trunc = os.path.join(tmp, "truncated.gguf")
open(trunc, "wb").write(open(files["q4.gguf"], "rb").read()[:100000])
_, err = run([trunc], rc=3)
check("truncated.gguf" in err, f"truncated file message: {err}")
_, err = run(["--check", ref_path, trunc], rc=3)
_, err = run(["--gguf-hash", trunc], rc=3)
# A damaged file that the lenient reader can still read (APR header CRC broken): fingerprinted
# as far as it can be read, the problem on stderr, exit 3.
damaged = os.path.join(tmp, "damaged.apr")
blob = bytearray(open(files["bf16.apr"], "rb").read())
blob[50] ^= 1
open(damaged, "wb").write(blob)
out, err = run([damaged], rc=3)
check(json.loads(out)["tensor_count"] == 27 and "damaged.apr" in err and "CRC" in err.upper(),
      f"damaged APR: {err}")
junk = os.path.join(tmp, "junk.bin")
open(junk, "wb").write(b"\x00" * 64)
_, err = run([junk], rc=3)
check("junk.bin" in err, f"unknown format message: {err}")
bad_ref = os.path.join(tmp, "bad.json")
open(bad_ref, "w").write('{"schema": "rosetta-fingerprint", "schema_version": 1}')
_, err = run(["--check", bad_ref, src], rc=3)
check("bad.json" in err and "file" in err, f"bad reference message: {err}")
run(["--check", os.path.join(tmp, "absent.json"), src], rc=3)
run(["--bogus", src], rc=2)
run([], rc=2)
print(f"tools/fingerprint: {checks} checks passed")
PY
