#!/usr/bin/env python3
"""gguf-py's dequantizers (gguf.quants) against Rosetta's scalar reference dequantizers.

For every type both support, blocks quantized by Rosetta and blocks of random bytes (with finite
f16 scale fields) are dequantized by both; the floats must agree within float rounding (gguf-py
evaluates in numpy float32 with its own operation order). Where gguf-py also quantizes (Q8_0,
Q4_0, Q4_1, Q5_0, Q5_1, BF16), its bytes are compared with Rosetta's and the number of identical
blocks is printed.

Rosetta is reached through ctypes: librosetta-format.so when it exports the rk_*_ref kernels,
otherwise a shared library linked here from the kernels archive of the build.
Exit 77 (skip) only when numpy/gguf are missing or no C compiler can link the helper library.
"""
import ctypes
import os
import subprocess
import sys

try:
    import numpy as np
    from gguf import GGMLQuantizationType as T
    from gguf import quants
    from gguf.constants import GGML_QUANT_SIZES
except ImportError as e:  # loud skip: CI installs these
    print(f"test_quant_ggufpy: SKIP: {e}", file=sys.stderr)
    sys.exit(77)

BUILD = os.environ.get("ROSETTA_BUILD", "build")
TMP = os.path.join(os.environ.get("TEST_TMP", os.path.join(BUILD, "test-tmp")), "quant_ggufpy")

# Rosetta name, gguf-py type, byte offsets of f16 fields inside a block
TYPES = [
    ("q4_0", T.Q4_0, [0]),
    ("q4_1", T.Q4_1, [0, 2]),
    ("q5_0", T.Q5_0, [0]),
    ("q5_1", T.Q5_1, [0, 2]),
    ("q8_0", T.Q8_0, [0]),
    ("q2_K", T.Q2_K, [80, 82]),
    ("q3_K", T.Q3_K, [108]),
    ("q4_K", T.Q4_K, [0, 2]),
    ("q5_K", T.Q5_K, [0, 2]),
    ("q6_K", T.Q6_K, [208]),
    ("iq4_nl", T.IQ4_NL, [0]),
    ("iq4_xs", T.IQ4_XS, [0]),
    ("bf16", T.BF16, []),
    ("f16", T.F16, []),
]
GGUFPY_QUANTIZES = {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "bf16"}


def load_rosetta():
    so = os.path.join(BUILD, "libformat", "librosetta-format.so")
    if os.path.exists(so):
        lib = ctypes.CDLL(so)
        if hasattr(lib, "rk_dequantize_row_q4_K_ref"):
            return lib, so
    archive = None
    for root, _dirs, files in os.walk(os.path.join(BUILD, "kernels")):
        if "librosetta_kernels_cpu.a" in files:
            archive = os.path.join(root, "librosetta_kernels_cpu.a")
    if archive is None:
        print(f"test_quant_ggufpy: FAIL: no librosetta_kernels_cpu.a under {BUILD}/kernels", file=sys.stderr)
        sys.exit(1)
    os.makedirs(TMP, exist_ok=True)
    out = os.path.join(TMP, "libquantref.so")
    cmd = [os.environ.get("CC", "cc"), "-shared", "-o", out, "-Wl,--whole-archive", archive,
           "-Wl,--no-whole-archive", "-lm", "-lpthread"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        print(f"test_quant_ggufpy: SKIP: cannot link {out}: {detail}", file=sys.stderr)
        sys.exit(77)
    return ctypes.CDLL(out), out


def c_fn(lib, name):
    f = getattr(lib, name)
    f.restype = None
    f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    return f


def rosetta_quantize(lib, name, x):
    block, size = GGML_QUANT_SIZES[dict((n, t) for n, t, _ in TYPES)[name]]
    out = np.zeros(x.size // block * size, dtype=np.uint8)
    c_fn(lib, f"rk_quantize_row_{name}_ref")(x.ctypes.data, out.ctypes.data, x.size)
    return out


def rosetta_dequantize(lib, name, data, n):
    y = np.empty(n, dtype=np.float32)
    c_fn(lib, f"rk_dequantize_row_{name}_ref")(data.ctypes.data, y.ctypes.data, n)
    return y


def compare(name, what, mine, theirs):
    """Equal within float rounding: |a - b| <= 1e-6 |b| + 1e-6 * max|b| of the row set."""
    exact = int(np.sum(mine.view(np.uint32) == theirs.view(np.uint32)))
    scale = float(np.max(np.abs(theirs))) if theirs.size else 0.0
    diff = np.abs(mine.astype(np.float64) - theirs.astype(np.float64))
    bound = 1e-6 * np.abs(theirs.astype(np.float64)) + 1e-6 * scale
    bad = np.nonzero(~(diff <= bound))[0]
    if bad.size:
        i = int(bad[0])
        print(f"test_quant_ggufpy: {name} {what}: {bad.size} of {mine.size} values differ beyond float rounding; "
              f"first at element {i}: rosetta {mine[i]!r} gguf-py {theirs[i]!r}", file=sys.stderr)
        return False, exact
    return True, exact


def main():
    lib, where = load_rosetta()
    print(f"test_quant_ggufpy: Rosetta kernels from {where}")
    rng = np.random.default_rng(7)
    ok = True
    n = 256 * 96
    for name, qtype, f16_fields in TYPES:
        block, size = GGML_QUANT_SIZES[qtype]
        # rows of Gaussian values with magnitudes 1e-4 .. 1e3, plus ggml's cosine pattern
        x = (rng.standard_normal(n) * np.repeat(10.0 ** rng.uniform(-4, 3, n // 256), 256)).astype(np.float32)
        x[: 256 * 8] = (0.1 + 2.0 * np.cos(np.arange(256 * 8) + 5.0)).astype(np.float32)
        q = rosetta_quantize(lib, name, x)
        good, exact = compare(name, "dequantize (Rosetta-quantized blocks)",
                              rosetta_dequantize(lib, name, q, n), quants.dequantize(q, qtype).reshape(-1))
        ok &= good
        # random bytes with finite random f16 scales
        nb = n // block
        raw = rng.integers(0, 256, size=(nb, size), dtype=np.uint8)
        for off in f16_fields:
            h = (rng.standard_normal(nb) * 0.05).astype(np.float16)
            raw[:, off:off + 2] = h.view(np.uint8).reshape(nb, 2)
        if name in ("bf16", "f16"):
            vals = (rng.standard_normal(n) * 10.0).astype(np.float32)
            raw = (vals.view(np.uint32) >> 16).astype(np.uint16) if name == "bf16" else vals.astype(np.float16)
            raw = raw.view(np.uint8).reshape(nb, size)
        raw = np.ascontiguousarray(raw).reshape(-1)
        good2, exact2 = compare(name, "dequantize (random-byte blocks)",
                                rosetta_dequantize(lib, name, raw, n), quants.dequantize(raw, qtype).reshape(-1))
        ok &= good2
        line = (f"test_quant_ggufpy: {name:6s} {'ok  ' if good and good2 else 'FAIL'}: dequantize "
                f"{2 * nb} blocks ({exact + exact2} of {2 * n} values bit-identical, the rest within rounding)")
        if name in GGUFPY_QUANTIZES:
            theirs = quants.quantize(x, qtype).reshape(-1)
            same = int(np.sum(np.all(theirs.reshape(nb, size) == q.reshape(nb, size), axis=1)))
            line += f"; gguf-py quantize: {same} of {nb} blocks byte-identical to Rosetta"
        print(line)
    if not ok:
        print("test_quant_ggufpy: FAIL", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
