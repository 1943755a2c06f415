#!/usr/bin/env bash
# apr diff-tensors on the fixture: identical models (same file, SafeTensors vs its APR copy),
# lossless (BF16 -> F32 GGUF: same values) and lossy (Q8_0, Q4_K_M GGUF: within the per-dtype
# tolerance) conversions pass; a scaled tensor, a transposed tensor (shape swapped, data
# transposed), a missing tensor and a NaN fail with exit 1, each named by its name in A in the
# JSON; metrics against numpy on the same values; damaged inputs exit 3.
set -euo pipefail
: "${APR_BIN:?}" "${ROSETTA_ROOT:?}" "${TEST_TMP:?}"
tmp="$TEST_TMP/diff_tensors"
rm -rf "$tmp" && mkdir -p "$tmp"
python3 -c "import numpy, gguf" 2>/dev/null || { echo "SKIP: numpy/gguf missing (make test installs them)" >&2; exit 77; }
exec python3 - "$APR_BIN" "$ROSETTA_ROOT" "$tmp" <<'PY'
import json, os, shutil, struct, subprocess, sys
import numpy as np
import gguf

apr, root, tmp = sys.argv[1:4]
# Inputs are made by the build's own apr quantize (not the program under test: under
# `make test-valgrind` APR_BIN holds memcheck wrappers, and quantizing there only costs time).
QUANTIZE = os.path.join(os.environ.get("ROSETTA_BUILD") or os.path.join(apr, ".."), "bin", "apr-quantize")
QUICK = os.environ.get("ROSETTA_VALGRIND") == "1"  # fewer repetitions under memcheck
DIFF = os.path.join(apr, "apr-diff-tensors")
checks = 0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def check(cond, msg):
    global checks
    if not cond:
        fail(msg)
    checks += 1


def run(args, rc=0, exe=DIFF):
    p = subprocess.run([exe, *args], capture_output=True, timeout=300)
    if p.returncode != rc:
        fail(f"{os.path.basename(exe)} {' '.join(args)}: exit {p.returncode}, expected {rc}\n"
             f"stdout: {p.stdout.decode(errors='replace')[-2000:]}\n"
             f"stderr: {p.stderr.decode(errors='replace')[-1500:]}")
    return p.stdout.decode(), p.stderr.decode()


def diff(a, b, *extra, rc=0):
    return json.loads(run(["--json", *extra, a, b], rc=rc)[0])


fixdir = os.path.join(root, "fixtures/tiny-qwen2")
src = os.path.join(fixdir, "model.safetensors")
files = {}
for name, fmt, typ in (("bf16.apr", "apr", "bf16"), ("f32.gguf", "gguf", "f32"),
                       ("q8.gguf", "gguf", "q8_0"), ("q4.gguf", "gguf", "q4_k_m")):
    files[name] = os.path.join(tmp, name)
    run(["-q", "--format", fmt, src, files[name], typ], exe=QUANTIZE)

r = diff(src, src)
check(r["passed"] and {t["status"] for t in r["tensors"]} == {"identical"}, "same file: identical")
r = diff(src, files["bf16.apr"])
check(r["passed"] and {t["status"] for t in r["tensors"]} == {"identical"}, "APR BF16 copy: identical")
r = diff(src, files["f32.gguf"])
check(r["passed"] and {t["status"] for t in r["tensors"]} == {"same-values"}, "F32 GGUF: same values")
check(all(t["name_b"].startswith(("blk.", "token_embd", "output")) for t in r["tensors"]),
      "paired with the GGUF names")
for k in ("q8.gguf", "q4.gguf"):
    r = diff(src, files[k])
    check(r["passed"] and r["deviating"] == [], f"{k}: within tolerance: {r['deviating']}")
    check("within-tolerance" in {t["status"] for t in r["tensors"]}, f"{k}: some lossy tensors")

# A tied model: the APR copy keeps lm_head (a copy of the embedding), SafeTensors has none.
tied = os.path.join(root, "fixtures/tiny-qwen2-tied/model.safetensors")
tied_apr = os.path.join(tmp, "tied.apr")
run(["-q", "--format", "apr", tied, tied_apr, "bf16"], exe=QUANTIZE)
rt = diff(tied, tied_apr)
head = [t for t in rt["tensors"] if t["name_b"] == "lm_head.weight"]
check(rt["passed"] and len(head) == 1 and head[0]["name_a"] == "model.embed_tokens.weight" and
      head[0]["status"] == "identical", f"tied head paired with the embedding: {head}")

# Metrics against numpy for one quantized pair (gguf-py dequantizes B).
reader = gguf.GGUFReader(files["q4.gguf"])
rt = next(t for t in reader.tensors if t.name == "blk.0.ffn_down.weight")
b = gguf.quants.dequantize(rt.data, rt.tensor_type).astype(np.float32).ravel()
raw = open(src, "rb").read()
hlen = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + hlen])
def st_values(name):
    lo, hi = header[name]["data_offsets"]
    u = np.frombuffer(raw[8 + hlen + lo:8 + hlen + hi], dtype="<u2").astype(np.uint32) << 16
    return u.view(np.float32)
a = st_values("model.layers.0.mlp.down_proj.weight")
t = next(t for t in r["tensors"] if t["name"] == "model.layers.0.mlp.down_proj.weight")
d = a.astype(np.float64) - b.astype(np.float64)
want = {"max_abs_diff": np.abs(d).max(), "mean_abs_diff": np.abs(d).mean(),
        "rmse": np.sqrt((d * d).mean()),
        "cosine": float(a.astype(np.float64) @ b.astype(np.float64) /
                        (np.linalg.norm(a.astype(np.float64)) * np.linalg.norm(b.astype(np.float64))))}
for f, w in want.items():
    check(abs(t[f] - w) <= 1e-9 * max(abs(w), 1e-12), f"{f}: apr {t[f]}, numpy {w}")
ne = np.nonzero(a.view(np.uint32) != b.view(np.uint32))[0]
check(t["differing"] == len(ne) and t["first_difference"] == int(ne[0]), "differing / first index")

# Modified copies of the SafeTensors file: scaled, transposed, missing, NaN.
def write_st(path, tensors):
    hdr, blobs, off = {}, [], 0
    for name, (dtype, shape, data) in tensors.items():
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(hdr).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

def tensors_of():
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        out[name] = [info["dtype"], list(info["shape"]), raw[8 + hlen + lo:8 + hlen + hi]]
    return out

def bf16_bytes(v):
    return (v.astype(np.float32).view(np.uint32) >> 16).astype("<u2").tobytes()

def variant(name, edit):
    d = os.path.join(tmp, name)
    shutil.copytree(fixdir, d)
    ts = tensors_of()
    edit(ts)
    write_st(os.path.join(d, "model.safetensors"), ts)
    return os.path.join(d, "model.safetensors")

scaled_name = "model.layers.1.mlp.up_proj.weight"
def scale(ts):
    ts[scaled_name][2] = bf16_bytes(st_values(scaled_name) * 2)
trans_name = "model.layers.0.mlp.gate_proj.weight"
def transpose(ts):
    dt, shape, _ = ts[trans_name]
    v = st_values(trans_name).reshape(shape).T.copy()
    ts[trans_name] = [dt, [shape[1], shape[0]], bf16_bytes(v)]
missing_name = "model.layers.1.self_attn.k_proj.bias"
def drop(ts):
    del ts[missing_name]
nan_name = "model.norm.weight"
def poison(ts):
    v = st_values(nan_name).copy()
    v[7] = np.nan
    ts[nan_name][2] = bf16_bytes(v)

for label, edit, name, status in (("scaled", scale, scaled_name, {"large", "medium", "small", "critical"}),
                                  ("transposed", transpose, trans_name, {"transposed"}),
                                  ("missing", drop, missing_name, {"only-in-a"}),
                                  ("nan", poison, nan_name, {"critical"})):
    path = variant(label, edit)
    r = diff(src, path, rc=1)
    check(r["deviating"] == [name], f"{label}: deviating {r['deviating']}, expected [{name}]")
    st = {t["name"]: t["status"] for t in r["tensors"]}
    check(st[name] in status, f"{label}: status {st[name]}")
    check(all(s == "identical" for n, s in st.items() if n != name), f"{label}: others identical")
    if QUICK:
        continue
    # The same change seen from a GGUF A: named by its GGUF name.
    r = diff(files["f32.gguf"], path, rc=1)
    check(len(r["deviating"]) == 1 and r["deviating"][0].startswith(("blk.", "output_norm")),
          f"{label} from GGUF: {r['deviating']}")
r = diff(src, os.path.join(tmp, "missing/model.safetensors"), "--mismatches-only", rc=1)
check([t["name"] for t in r["tensors"]] == [missing_name], "--mismatches-only")
r = diff(src, os.path.join(tmp, "scaled/model.safetensors"), "--filter", "*.mlp.*", rc=1)
check(all(".mlp." in t["name"] for t in r["tensors"]) and len(r["tensors"]) == 6, "--filter")
r = diff(src, os.path.join(tmp, "scaled/model.safetensors"), "--tolerance", "10")
check(r["passed"], "--tolerance 10 accepts the scaled tensor")
r = diff(src, os.path.join(tmp, "nan/model.safetensors"), "--show", "4", rc=1)
t = next(t for t in r["tensors"] if t["name"] == nan_name)
check(t["first_difference"] == 7 and len(t["values_a"]) == 4 and t["values_b"][2] is None,
      f"--show: {t.get('values_first')} {t.get('values_b')}")
out, _ = run([src, os.path.join(tmp, "transposed/model.safetensors")], rc=1)
check("transposed" in out and trans_name in out, "text output names the transposed tensor")

# Damaged inputs: exit 3.
trunc = os.path.join(tmp, "truncated.gguf")
open(trunc, "wb").write(open(files["q4.gguf"], "rb").read()[:50000])
_, err = run([src, trunc], rc=3)
check("truncated.gguf" in err, f"message names the file: {err}")
run([src], rc=2)
print(f"tools/diff_tensors: {checks} checks passed")
PY
